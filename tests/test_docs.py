"""docs/writing-a-store.md cannot rot: its store listing is tests/memory_store.py, byte for byte."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "writing-a-store.md"
MARKER = "<!-- listing: tests/memory_store.py"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_docs_listing_is_the_tested_store() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1
    after = text[text.index(MARKER) :]
    listing = python_blocks(after)[0]
    source = (ROOT / "tests" / "memory_store.py").read_text(encoding="utf-8")
    assert listing == source, "docs/writing-a-store.md must show tests/memory_store.py exactly; copy it over"


def test_docs_python_blocks_parse() -> None:
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    for block in blocks:
        ast.parse(block)


def test_docs_names_every_conformance_class() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in ("StoreConformance", "QueryableStoreConformance", "ExtendedStoreConformance", "store_factory"):
        assert f"`{name}`" in text


def test_readme_examples_run(tmp_path: Path) -> None:
    """Every Python example in the README runs as shown (in a scratch directory),
    and runs again: a reader re-runs examples, on the store the first run left."""
    import os
    import subprocess
    import sys

    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_"))}
    for run in ("first", "second"):
        for index, block in enumerate(blocks):
            script = tmp_path / f"readme_{index}.py"
            script.write_text(block, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"README example {index} failed on its {run} run:\n{done.stderr}"
            assert done.stdout.strip(), f"README example {index} printed nothing"
