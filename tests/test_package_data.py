"""The wheel carries everything the session browser serves: templates and
stylesheet are package data, so `kode serve` needs no network and no CDN."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_browser_assets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "--wheel-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("kode_sdk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    web = ROOT / "src" / "kode_sdk" / "web"
    assets = sorted(p.relative_to(ROOT / "src").as_posix() for p in web.rglob("*") if p.suffix in (".html", ".css"))
    assert len(assets) >= 6
    assert [a for a in assets if a not in names] == []
    # Nothing the pages reference lives outside the package.
    for page in web.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "<script" not in text, page.name
