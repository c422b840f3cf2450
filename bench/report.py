"""Turn benchmark result lines (W1–W4) into the published report.

    python bench/report.py RESULTS.jsonl [MORE.jsonl ...] [--out-dir bench/results]
                           [--docs docs/benchmarks.md]

Reads JSON lines (other lines are ignored; ``-`` is stdin) as printed by
``bench/run.py`` (W1–W3) and ``bench/w4.py`` (W4). Lines for the same
workload, backend and system are repetitions: every number is reduced to its
median (element-wise for per-turn series). Writes:

- ``latest.json``: the machine, the reduced rows, the ratios;
- ``latest.md``: the tables — W4 per backend with ratios to ours, and ours
  against the raw-driver floor for W1–W3;
- ``w1_growth.png``: W1 per-turn latency against conversation length, ours and
  the floor, one panel per backend (from the rows' ``turn_series_ms``);
- ``w4.png``: W4 write seconds and bytes on disk per system;

and, with ``--docs``, replaces what sits between ``<!-- results:begin -->`` and
``<!-- results:end -->`` in that file with the tables and picture links.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from w4 import OURS, add_ratios

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SERIES_KEY = "turn_series_ms"

# Metrics compared with the raw floor, per workload. Keys ending in _per_s are
# "higher is better" and are inverted, so every ratio reads "ours needs N× the floor".
FLOOR_METRICS = {
    "W1": ["seconds", "turn_p50_ms", "turn_p99_ms", "early_p50_ms", "late_p50_ms"],
    "W2": ["appends_per_s", "read_all_seconds", "read_since_seconds", "read_channel_seconds"],
    "W3": [
        "populate_seconds",
        "db_size_bytes",
        "sessions_p50_ms",
        "messages_p50_ms",
        "tool_calls_p50_ms",
        "stats_p50_ms",
        "list_p50_ms",
    ],
}


# --------------------------------------------------------------------------- input


def read_rows(paths: Iterable[str]) -> list[dict[str, Any]]:
    """Every JSON object line of the given files (``-``: stdin)."""
    rows = []
    for name in paths:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "workload" in row:
                    rows.append(row)
    return rows


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    # Sizes are part of the key: a 200-turn growth run is not a repetition of a 40-turn run.
    sizes = (
        row.get("agents"),
        row.get("sessions"),
        row.get("turns"),
        row.get("events"),
        row.get("messages"),
        row.get("mode"),  # W2: single appends and batches are different measurements
    )
    return (str(row.get("workload")), str(row.get("backend")), str(row.get("system", "")), repr(sizes))


def _median_of(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values):
        m = statistics.median(numbers)
        return int(m) if all(isinstance(v, int) for v in numbers) and m == int(m) else m
    if all(isinstance(v, bool) for v in values):
        return all(values)
    if (
        all(isinstance(v, list) for v in values)
        and values
        and all(isinstance(x, int | float) for v in values for x in v)
    ):
        length = min(len(v) for v in values)
        return [statistics.median(v[i] for v in values) for i in range(length)]
    return values[0]


def reduce_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (workload, backend, system): medians over repetitions, input order kept."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_key(row), []).append(row)
    reduced = []
    for group in groups.values():
        if len(group) == 1:
            reduced.append(dict(group[0]))
            continue
        ran = [r for r in group if "skipped" not in r] or group
        merged: dict[str, Any] = {}
        for name in dict.fromkeys(k for r in ran for k in r):
            merged[name] = _median_of([r[name] for r in ran if name in r])
        merged["repetitions"] = len(ran)
        reduced.append(merged)
    return reduced


# --------------------------------------------------------------------------- ratios


def floor_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours against the raw-driver floor (``<backend>`` vs ``<backend>-raw``) for W1–W3."""

    def sizes(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r.get("agents"), r.get("turns"), r.get("events"), r.get("messages"), r.get("mode"))

    by_key = {
        (r["workload"], r["backend"], sizes(r)): r for r in rows if "skipped" not in r and r.get("workload") != "W4"
    }
    out = []
    for (workload, backend, size), raw in by_key.items():
        if not str(backend).endswith("-raw"):
            continue
        # W1's floor is one run for both modes of ours (--mode calls | turn).
        matches = [
            r
            for (w, b, s), r in by_key.items()
            if w == workload and b == backend[: -len("-raw")] and (s == size or (w == "W1" and s[:4] == size[:4]))
        ]
        for ours in matches:
            out += _ratios(workload, backend, raw, ours)
    return out


def _ratios(workload: str, backend: str, raw: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: ``ours`` against the floor ``raw``."""
    out = []
    metrics = FLOOR_METRICS.get(workload) or sorted(
        k for k in ours if k in raw and isinstance(ours[k], int | float) and not isinstance(ours[k], bool)
    )
    for metric in metrics:
        a, b = ours.get(metric), raw.get(metric)
        if not isinstance(a, int | float) or not isinstance(b, int | float) or not a or not b:
            continue
        ratio = b / a if metric.endswith("_per_s") else a / b
        out.append(
            {
                "workload": workload,
                "backend": backend[: -len("-raw")],
                "size": _size_label(ours),
                "metric": metric,
                "ours": a,
                "floor": b,
                "ours_vs_floor": round(ratio, 3),
            }
        )
    return out


def _size_label(row: dict[str, Any]) -> str:
    if row.get("workload") == "W1":
        mode = row.get("mode")
        return f"{row.get('agents')}×{row.get('turns')}" + (f", {mode}" if mode else "")
    if row.get("workload") == "W2":
        mode = row.get("mode")
        return f"{row.get('events')} events" + (f", {mode}" if mode else "")
    if row.get("workload") == "W3":
        return f"{row.get('messages')} msgs"
    return ""


# --------------------------------------------------------------------------- machine


def machine(dsn: str | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    if dsn:
        try:
            import psycopg

            with psycopg.connect(dsn, connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                info["postgresql"] = row[0] if row else None
        except Exception:  # the report still renders without a server
            info["postgresql"] = None
    return info


# --------------------------------------------------------------------------- markdown


def _fmt_s(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _fmt_bytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value / 1e6:.2f} MB" if value >= 1e5 else f"{value / 1e3:.1f} kB"


def _fmt_ratio(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def w4_tables(rows: list[dict[str, Any]]) -> str:
    w4 = [r for r in rows if r.get("workload") == "W4"]
    if not w4:
        return "_No W4 results in this run._\n"
    first = next((r for r in w4 if "sessions" in r), w4[0])
    out = [
        f"W4: {first.get('sessions')} sessions × {first.get('turns')} turns × 3 messages, "
        f"{first.get('raw_text_bytes', 0):,} bytes of random text in all. "
        "Ratios divide the system's figure by ours (`append_messages`) on the same backend: "
        "above 1 means the system needs more time or bytes than ours. Write CPU is the CPU time of the "
        "benchmark process (all its threads; not the PostgreSQL server's) during the writes: less "
        "sensitive than wall time to other work on the machine.\n",
    ]
    for backend in ("sqlite", "postgres", "memory"):
        chosen = [r for r in w4 if r.get("backend") == backend]
        if not chosen:
            continue
        title = {"sqlite": "SQLite", "postgres": "PostgreSQL", "memory": "In memory (graph cost only)"}[backend]
        out.append(f"\n### {title}\n")
        out.append(
            "| system | write s | write CPU s | read s | bytes | bytes ÷ raw text | verified | durability "
            "| write ÷ ours | CPU ÷ ours | read ÷ ours | bytes ÷ ours |"
        )
        out.append("|---|--:|--:|--:|--:|--:|:-:|---|--:|--:|--:|--:|")
        for r in chosen:
            name = f"**{r['system']}**" if r["system"].startswith("kode-") else r["system"]
            if "skipped" in r:
                out.append(f"| {name} | skipped: {r['skipped']} | | | | | | | | | | |")
                continue
            verified = "yes" if r.get("verified") else "**NO**"
            if r.get("not_compared"):
                verified += f" (not: {', '.join(r['not_compared'])})"
            out.append(
                f"| {name} | {_fmt_s(r.get('write_seconds'))} | {_fmt_s(r.get('write_cpu_seconds'))} "
                f"| {_fmt_s(r.get('read_seconds'))} "
                f"| {_fmt_bytes(r.get('bytes'))} | {_fmt_ratio(r.get('bytes_per_raw_text'))} | {verified} "
                f"| {r.get('durability') or '–'} | {_fmt_ratio(r.get('write_vs_ours'))} "
                f"| {_fmt_ratio(r.get('write_cpu_vs_ours'))} "
                f"| {_fmt_ratio(r.get('read_vs_ours'))} | {_fmt_ratio(r.get('bytes_vs_ours'))} |"
            )
        for r in chosen:
            if "framework_system" in r:
                out.append(
                    f"\n{r['system']} (this project's adapter) against {r['framework_system']} (the framework's "
                    f"own, same backend): write {_fmt_ratio(r.get('write_vs_framework'))}, write CPU "
                    f"{_fmt_ratio(r.get('write_cpu_vs_framework'))}, read {_fmt_ratio(r.get('read_vs_framework'))}, "
                    f"bytes {_fmt_ratio(r.get('bytes_vs_framework'))} (below 1: the adapter needs less)."
                )
        graphs = [r for r in chosen if "write_seconds_minus_graph" in r]
        for r in graphs:
            out.append(
                f"\n{r['system']}: {_fmt_s(r['write_seconds'])} s of which the graph alone "
                f"(InMemorySaver) takes {_fmt_s(r['graph_only_write_seconds'])} s; the checkpointer's share, "
                f"{_fmt_s(r['write_seconds_minus_graph'])} s, is "
                f"{_fmt_ratio(r.get('write_minus_graph_vs_ours'))} ours."
            )
    return "\n".join(out) + "\n"


def floor_table(ratios: list[dict[str, Any]]) -> str:
    if not ratios:
        return "_No W1–W3 results with a raw floor in this run._\n"
    out = [
        "Ours ÷ floor: how many times the bare driver's cost (time or bytes; for rates, the inverse) ours needs.\n",
        "| workload | size | backend | metric | ours | floor | ours ÷ floor |",
        "|---|---|---|---|--:|--:|--:|",
    ]
    for r in ratios:
        ours, floor = r["ours"], r["floor"]
        shown = [f"{v:,.0f}" if v >= 1000 else f"{v:.3f}" for v in (ours, floor)]
        out.append(
            f"| {r['workload']} | {r['size']} | {r['backend']} | {r['metric']} | {shown[0]} | {shown[1]} "
            f"| {_fmt_ratio(r['ours_vs_floor'])} |"
        )
    return "\n".join(out) + "\n"


def headline(rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per backend: ours against the fastest and the slowest peer."""
    lines = []
    for backend, ours_name in OURS.items():
        ours = next((r for r in rows if r.get("system") == ours_name and "write_seconds" in r), None)
        if ours is None:
            continue
        peers = [
            r
            for r in rows
            if r.get("workload") == "W4"
            and r.get("backend") == backend
            and "write_vs_ours" in r
            and not r["system"].startswith("kode-")
        ]
        if not peers:
            continue
        parts = [
            f"{r['system']} {_fmt_ratio(r['write_vs_ours'])}" for r in sorted(peers, key=lambda r: r["write_vs_ours"])
        ]
        lines.append(
            f"- W4 on {backend}: `append_messages` writes the conversation in {_fmt_s(ours['write_seconds'])} s "
            f"({_fmt_ratio(ours.get('bytes_per_raw_text'))} the raw text on disk); peers take "
            + ", ".join(parts)
            + " as long."
        )
    return lines


def markdown(rows: list[dict[str, Any]], ratios: list[dict[str, Any]], info: dict[str, Any], images: str) -> str:
    machine_line = (
        f"{info.get('cpus')} CPUs ({info.get('cpu', 'unknown CPU')}), {info.get('memory_gib', '?')} GiB RAM, "
        f"Python {info.get('python')}, SQLite {info.get('sqlite')}"
        + (f", PostgreSQL {info['postgresql']}" if info.get("postgresql") else "")
        + f"; generated {info.get('generated_at')}."
    )
    parts = [
        "## Latest results\n",
        f"Machine: {machine_line}\n",
        *(["**Headline**\n", "\n".join(headline(rows)) + "\n"] if headline(rows) else []),
        "## W4 — the same conversation through every system\n",
        w4_tables(rows),
        "## Ours against the raw-driver floor (W1–W3)\n",
        floor_table(ratios),
        "## Pictures\n",
        f"![W1 growth: per-turn latency against conversation length]({images}w1_growth.png)\n",
        f"![W4: write seconds and bytes on disk per system]({images}w4.png)\n",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------- pictures


def plot_w1_growth(rows: list[dict[str, Any]], path: Path) -> bool:
    """Per-turn latency (ms, median over agents) against turn number; ours vs floor per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("workload") == "W1" and isinstance(r.get(SERIES_KEY), list) and r[SERIES_KEY]:
            best = longest.get(str(r["backend"]))
            if best is None or len(r[SERIES_KEY]) > len(best[SERIES_KEY]):
                longest[str(r["backend"])] = r
    series = list(longest.values())
    families = list(dict.fromkeys(str(r["backend"]).removesuffix("-raw") for r in series))
    if not families:
        fig, ax = plt.subplots(figsize=(7, 2.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No W1 per-turn series ('{SERIES_KEY}') in this run's results.", ha="center", va="center")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return False
    fig, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 4), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        for r in series:
            backend = str(r["backend"])
            if backend.removesuffix("-raw") != family:
                continue
            values = r[SERIES_KEY]
            raw = backend.endswith("-raw")
            ax.plot(
                range(1, len(values) + 1),
                values,
                label=f"{backend} (raw driver floor)" if raw else f"{backend} (kode-sdk)",
                linestyle="--" if raw else "-",
                color="grey" if raw else "tab:blue",
                linewidth=1.2,
            )
        ax.set_title(f"W1 on {family}")
        ax.set_xlabel("turn (conversation length = 3 × turn messages)")
        ax.set_ylabel("per-turn latency, ms (median over agents)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_w4(rows: list[dict[str, Any]], path: Path) -> bool:
    """Horizontal bars: write seconds and bytes on disk per system, ours highlighted, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w4 = [r for r in rows if r.get("workload") == "W4"]
    order = {"sqlite": 0, "postgres": 1, "memory": 2}
    w4.sort(key=lambda r: order.get(str(r.get("backend")), 9))
    if not w4:
        return False
    labels = [f"{r['system']}" for r in w4]
    colors = ["tab:blue" if r["system"].startswith("kode-") else "tab:orange" for r in w4]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.42 * len(w4) + 1.6), sharey=True)
    positions = list(range(len(w4)))[::-1]
    for ax, key, title, fmt in (
        (left, "write_seconds", "write seconds (log scale)", lambda v: f"{v:.2f} s"),
        (right, "bytes", "bytes on disk / schema growth (log scale)", lambda v: f"{v / 1e6:.2f} MB"),
    ):
        for y, r, color in zip(positions, w4, colors, strict=True):
            value = r.get(key)
            if isinstance(value, int | float) and value > 0:
                ax.barh(y, value, color=color)
                ax.text(value * 1.05, y, fmt(value), va="center", fontsize=8)
            else:
                reason = "skipped" if "skipped" in r else "n/a (in memory)"
                ax.text(0.01, y, reason, va="center", fontsize=8, transform=ax.get_yaxis_transform())
        ax.set_xscale("log")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.25)
    left.set_yticks(positions)
    left.set_yticklabels(labels, fontsize=8)
    raw = next((r.get("raw_text_bytes") for r in w4 if r.get("raw_text_bytes")), None)
    if raw:
        right.axvline(raw, color="black", linestyle=":", linewidth=1)
        right.set_title(
            f"bytes on disk / schema growth (log scale)\ndotted line: the raw text, {raw / 1e6:.2f} MB", fontsize=10
        )
    fig.suptitle("W4: the same conversation through every system (blue: kode-sdk)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- main


def replace_docs(path: Path, body: str) -> None:
    """Put ``body`` between the results markers of ``path`` (appending the markers if absent)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{body.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


def build(rows: list[dict[str, Any]], out_dir: Path, docs: Path | None, dsn: str | None) -> dict[str, Any]:
    """Reduce, compute ratios, write every output; returns what went into latest.json."""
    reduced = reduce_rows(rows)
    w4 = [r for r in reduced if r.get("workload") == "W4"]
    if w4:
        add_ratios(w4)
    ratios = floor_ratios(reduced)
    info = machine(dsn)
    info["generated_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"machine": info, "results": reduced, "floor_ratios": ratios, "headline": headline(reduced)}
    (out_dir / "latest.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_w1_growth(reduced, out_dir / "w1_growth.png")
    plot_w4(reduced, out_dir / "w4.png")
    (out_dir / "latest.md").write_text("# Benchmark results\n\n" + markdown(reduced, ratios, info, "") + "\n")
    if docs is not None:
        relative = os.path.relpath(out_dir.resolve(), docs.resolve().parent).replace(os.sep, "/") + "/"
        replace_docs(docs, markdown(reduced, ratios, info, relative))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="JSON-lines result files ('-' for stdin)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--docs", type=Path, default=None, help="also refresh the results block of this Markdown file")
    parser.add_argument("--dsn", default=os.environ.get("KODE_TEST_POSTGRES_URL"), help="to record the server version")
    args = parser.parse_args(argv)
    rows = read_rows(args.inputs)
    if not rows:
        print("report: no result lines in the inputs", file=sys.stderr)
        return 1
    report = build(rows, args.out_dir, args.docs, args.dsn)
    print(f"report: {len(report['results'])} results -> {args.out_dir}", file=sys.stderr)
    for line in report["headline"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
