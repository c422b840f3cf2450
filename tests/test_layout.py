"""The package layout docs/architecture.md promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kode_sdk.store

STORE = Path(kode_sdk.store.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved inside kode_sdk."""
    package = "kode_sdk." + ".".join(path.relative_to(STORE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_store_package_never_imports_ops() -> None:
    offenders = {
        str(path.relative_to(STORE)): sorted(m for m in _imported_modules(path) if m.startswith("kode_sdk.ops"))
        for path in STORE.rglob("*.py")
        if path.name != "migrate.py"  # the documented alias of kode_sdk.ops.copy
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_documented_copier_alias_is_the_copier() -> None:
    from kode_sdk.ops import copy
    from kode_sdk.store import migrate

    for name in copy.__all__:
        assert getattr(migrate, name) is getattr(copy, name), name


def _backend_of(module: str) -> str | None:
    """``postgres``, ``sqlite`` or ``json`` for a module of that backend, else None."""
    if not module.startswith("kode_sdk.store."):
        return None
    name = module.removeprefix("kode_sdk.store.").split(".")[0]
    for backend in ("postgres", "sqlite", "json"):
        if name == backend or name.startswith(backend + "_"):
            return backend
    return None


def test_a_backend_never_imports_another_backend() -> None:
    offenders: dict[str, list[str]] = {}
    for path in STORE.rglob("*.py"):
        own = _backend_of("kode_sdk." + ".".join(path.relative_to(STORE.parent).with_suffix("").parts))
        if own is None:
            continue
        others = sorted(m for m in _imported_modules(path) if _backend_of(m) not in (None, own))
        if others:
            offenders[str(path.relative_to(STORE))] = others
    assert offenders == {}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_sql_backend_is_one_package_of_modules_that_say_their_job(backend: str) -> None:
    package = STORE / backend
    assert not (STORE / f"{backend}.py").exists()
    assert sorted(p.name for p in STORE.glob(f"{backend}_*.py")) == []  # nothing left at the old paths
    for path in package.glob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring, f"store/{backend}/{path.name} has no module docstring saying its job"
