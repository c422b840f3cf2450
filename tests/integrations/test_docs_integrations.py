"""Every Python example in docs/integrations/*.md runs as shown (in a scratch directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_integration_page_examples_run(page: str, tmp_path: Path) -> None:
    blocks = python_blocks((DOCS / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no Python example"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_"))}
    for index, block in enumerate(blocks):
        script = tmp_path / f"example_{index}.py"
        script.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{page} example {index} failed:\n{done.stderr}"
        assert done.stdout.strip(), f"{page} example {index} printed nothing"
