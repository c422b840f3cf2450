"""`kode_sdk.store.base` is exactly the extension interface docs/writing-a-store.md
promises store authors: every name it exports is documented there, every piece
the page's table names is exported, and each is the object its owning module
defines (the re-export adds nothing of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import kode_sdk.store.base as interface

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-store.md"


def _table_names() -> set[str]:
    section = DOC.read_text().split("## The pieces you get for free")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", row)}


def test_every_exported_name_is_documented_and_every_documented_piece_exported() -> None:
    documented = _table_names() - {"kode_sdk", "Record"}  # module and model named for context
    exported = set(interface.__all__)
    assert exported - documented == set(), "exported but not in writing-a-store.md's table"
    assert documented - exported == set(), "in writing-a-store.md's table but not exported"


def test_the_interface_only_gathers_names_its_modules_own() -> None:
    for name in interface.__all__:
        value = getattr(interface, name)
        owner = getattr(value, "__module__", None)
        if owner is not None and isinstance(value, type | type(lambda: None)):
            assert owner != "kode_sdk.store.base", f"{name} is defined in base.py, not in the module of its job"
    source = Path(interface.__file__).read_text()
    assert not re.search(r"^(def|class|async def) ", source, re.M), "base.py defines code instead of re-exporting"
