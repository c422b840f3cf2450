"""Commands that change or copy stores: ``migrate``, ``backup``, ``restore``,
``export``, ``import`` and ``prune``. Progress goes to stderr, so ``--json``
output on stdout stays one clean document.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import StoreConfigError
from ..ops import backup as backup_ops
from ..ops.copy import AgentOutcome
from ..ops.copy import migrate as migrate_stores
from ..ops.export import export_jsonl, import_dumps, parse_jsonl
from ..ops.filters import parse_duration, time_ago
from ..ops.prune import prune as prune_store
from ..store.agent_ids import validate_agent_id
from ..store.catalog import stored_agent_ids
from ..store.factory import create_store
from ..store.protocols import Store
from ..types import now_utc
from .app import JsonOption, State, UsageError, app, emit_json, run_async, run_with_store, stderr, stdout
from .text import inert

__all__ = ["backup", "export", "import_", "migrate", "prune", "restore"]


@contextlib.contextmanager
def _progress(description: str, total: int | None, *, quiet: bool) -> Iterator[Any]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=quiet or not stderr.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda *_: progress.advance(task)


def _agents(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [validate_agent_id(v) for v in values]


AgentsOption = Annotated[list[str] | None, typer.Option("--agent", "-a", help="Only this agent (repeat for several).")]


@app.command()
def migrate(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="Source store: sqlite:PATH, postgres:DSN or json:DIR.")],
    dst: Annotated[str, typer.Argument(help="Destination store, same forms.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compare and report; write nothing.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace destination agents that conflict with the source.")
    ] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Read everything back and compare.")] = True,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Agents copied concurrently.", min=1)] = 16,
    agent: AgentsOption = None,
    json: JsonOption = False,
) -> None:
    """Copy every agent from SRC into DST (any backend to any other); safe to re-run."""
    state: State = ctx.obj
    agent_ids = _agents(agent)
    source, target = state.store(src), state.store(dst, create=not dry_run)

    async def go() -> Any:
        nonlocal target
        try:
            await source.open()
            try:
                await target.open()
            except StoreConfigError:
                if not dry_run:
                    raise
                # A dry run into a store that does not exist yet compares with an
                # empty one, and creates nothing.
                target = create_store({"type": "sqlite", "db_path": ":memory:"})
                await target.open()
            total = len(agent_ids) if agent_ids is not None else len(await stored_agent_ids(source))
            with _progress("migrating", total, quiet=False) as advance:

                def on_agent(outcome: AgentOutcome) -> None:
                    advance()

                return await migrate_stores(
                    source,
                    target,
                    agent_ids=agent_ids,
                    dry_run=dry_run,
                    overwrite=overwrite,
                    verify_after=verify,
                    batch_size=batch_size,
                    on_agent=on_agent,
                )
        finally:
            await source.close()
            await target.close()

    report = run_async(ctx, go)
    if json:
        emit_json(report.to_json(agents=True))
    else:
        table = Table("agents", "count", title="migration" + (" (dry run)" if dry_run else ""))
        table.add_row("in source", str(report.total))
        table.add_row("would copy" if dry_run else "copied", str(report.copied))
        table.add_row("would update" if dry_run else "updated", str(report.updated))
        table.add_row("already identical", str(report.identical))
        table.add_row("conflicts", str(len(report.conflicts)))
        if report.verified is not None:
            table.add_row("verified identical", str(report.total - len(report.conflicts) - len(report.mismatches)))
            table.add_row("verify mismatches", str(len(report.mismatches)))
        stdout.print(table)
        for outcome in report.conflicts[:20]:
            stdout.print(inert(f"  {outcome.agent_id}: {'; '.join(outcome.problems)}"), markup=False, highlight=False)
        for mismatch in report.mismatches[:20]:
            stdout.print(f"  {mismatch['agentId']}: content differs after copy", markup=False, highlight=False)
    if not report.ok:
        if report.conflicts and not json:
            stderr.print("kode: conflicts left untouched; re-run with --overwrite to replace them", markup=False)
        raise typer.Exit(1)


@app.command()
def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="Backup file to write.")],
    json: JsonOption = False,
) -> None:
    """Back up the store: SQLite via the online backup API, PostgreSQL via pg_dump."""
    state: State = ctx.obj
    result = backup_ops.backup(state.config(), dest)
    if json:
        emit_json(result.to_json())
    else:
        integrity = f", integrity {result.integrity}" if result.integrity else ""
        stdout.print(
            inert(f"backed up {result.backend} store to {result.path} ({result.size_bytes} bytes{integrity})"),
            markup=False,
            highlight=False,
        )


@app.command()
def restore(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="Backup file made by 'kode backup'.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a database that already holds tables.")] = False,
    json: JsonOption = False,
) -> None:
    """Restore a backup into the store (SQLite backup API / pg_restore).

    A destination that already holds tables is replaced only with --force
    (exit 2 without it), on SQLite and PostgreSQL alike.
    """
    state: State = ctx.obj
    try:
        result = backup_ops.restore(state.config(), src, force=force)
    except backup_ops.DestinationNotEmptyError as exc:
        raise UsageError(str(exc)) from None
    if json:
        emit_json(result.to_json())
    else:
        stdout.print(inert(f"restored {result.backend} store from {src}"), markup=False, highlight=False)


@app.command()
def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Output file ('-' or nothing: stdout).")] = "-",
    agent: AgentsOption = None,
    json: JsonOption = False,
) -> None:
    """Export the store as portable JSON Lines (byte-identical across backends)."""
    if json and file == "-":
        raise UsageError("--json needs an output FILE (stdout carries the export)")
    agent_ids = _agents(agent)

    async def go(store: Store) -> Any:
        stored = await stored_agent_ids(store)
        if agent_ids is not None:
            # Checked before any output exists: an unknown agent is a usage error.
            missing = sorted(set(agent_ids) - set(stored))
            if missing:
                raise UsageError(f"--agent: nothing is stored for agent {missing[0]!r}")
        total = len(agent_ids) if agent_ids is not None else len(stored)
        out: IO[bytes]
        with contextlib.ExitStack() as stack:
            if file == "-":
                out = sys.stdout.buffer
            else:
                path = Path(file)
                partial = path.with_name(path.name + ".partial")
                out = stack.enter_context(partial.open("wb"))
                stack.callback(partial.unlink, missing_ok=True)  # a no-op once it is renamed
            with _progress("exporting", total, quiet=file == "-") as advance:
                stats = await export_jsonl(store, out, agent_ids=agent_ids, on_agent=advance)
            out.flush()
            if file != "-":
                partial.replace(path)
        return stats

    stats = run_with_store(ctx, go)
    if json:
        emit_json({"file": file, **stats.to_json()})
    elif file != "-":
        stdout.print(
            inert(f"exported {stats.agents} agents, {sum(stats.records.values())} records to {file}"),
            markup=False,
            highlight=False,
        )


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A 'kode export' file ('-': stdin).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and compare; write nothing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace agents that conflict.")] = False,
    json: JsonOption = False,
) -> None:
    """Import a JSON Lines export; the whole file is validated before anything is written."""
    if file == "-":
        lines: list[bytes] = sys.stdin.buffer.read().splitlines()
    else:
        try:
            lines = Path(file).read_bytes().splitlines()
        except FileNotFoundError:
            raise UsageError(f"{file}: no such file") from None

    # The whole file is validated before the store is opened: a bad file
    # creates no database and writes nothing.
    dumps = list(parse_jsonl(lines))

    async def go(store: Store) -> Any:
        return await import_dumps(store, dumps, overwrite=overwrite, dry_run=dry_run)

    stats = run_with_store(ctx, go, create=not dry_run)
    conflicts = [o for o in stats.outcomes if o.status in ("conflict", "failed")]
    if json:
        emit_json({"file": file, "dryRun": dry_run, **stats.to_json()})
    else:
        counts = stats.to_json().get("statuses", {})
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        stdout.print(f"imported {stats.agents} agents ({summary})", highlight=False)
        for outcome in conflicts[:20]:
            stdout.print(inert(f"  {outcome.agent_id}: {'; '.join(outcome.problems)}"), markup=False, highlight=False)
    if conflicts:
        raise typer.Exit(1)


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option("--older-than", help="Age cutoff: 90d, 12h, 2w, …")],
    template: Annotated[str | None, typer.Option("--template", "-t", help="Only agents of this template.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted.")] = False,
    json: JsonOption = False,
) -> None:
    """Delete agents created longer ago than --older-than (set-based, a few statements)."""
    try:
        cutoff = time_ago(parse_duration(older_than), older_than, now=now_utc())
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None

    async def go(store: Store) -> list[str]:
        return await prune_store(store, created_before=cutoff, template_id=template, dry_run=dry_run)

    ids = run_with_store(ctx, go)
    if json:
        emit_json({"dryRun": dry_run, "createdBefore": cutoff.isoformat(), "count": len(ids), "agentIds": ids})
    else:
        verb = "would delete" if dry_run else "deleted"
        stdout.print(f"{verb} {len(ids)} agents created before {cutoff.isoformat()}", highlight=False)
        if dry_run:
            for agent_id in ids[:50]:
                stdout.print(f"  {agent_id}", markup=False, highlight=False)
            if len(ids) > 50:
                stdout.print(f"  … and {len(ids) - 50} more", highlight=False)
