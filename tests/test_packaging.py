"""The package as users get it: the sdist builds a wheel, and the wheel
installed with only its core dependencies runs the README's store example and
``kode`` (issue 12, item 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def build(tmp_path: Path) -> tuple[Path, Path]:
    """The sdist of the checkout, and the wheel built from that sdist (so the sdist is complete)."""
    pytest.importorskip("hatchling", reason="hatchling (the build backend) is in the dev extra")
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", dist, cwd=ROOT)
    (sdist,) = dist.glob("kode_sdk-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (source,) = (tmp_path / "unpacked").iterdir()
    run(sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", dist, cwd=source)
    (wheel,) = dist.glob("kode_sdk-*.whl")
    return sdist, wheel


def test_sdist_and_wheel_carry_license_changelog_and_data(tmp_path: Path) -> None:
    sdist, wheel = build(tmp_path)
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= names
    assert not any(name.startswith("bench/results/") for name in names)
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
        metadata = archive.read(next(n for n in files if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in files)
    assert "kode_sdk/py.typed" in files and any(n.endswith(".sql") for n in files)
    assert "MIT License" in (ROOT / "LICENSE").read_text() and "License: MIT" in metadata
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert core and not any("psycopg" in line for line in core), core
    assert "Requires-Dist: psycopg[binary]>=3.2; extra == 'postgres'" in metadata
    assert "Project-URL:" in metadata and "Classifier: Programming Language :: Python :: 3.11" in metadata


def test_wheel_with_core_dependencies_only_runs_the_readme_and_kode(tmp_path: Path) -> None:
    _, wheel = build(tmp_path)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python, kode = venv / "bin" / "python", venv / "bin" / "kode"
    # pip resolves the core dependencies from its configured indexes and cache.
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_", "PYTHON"))}
    no_driver = subprocess.run([python, "-c", "import psycopg"], capture_output=True, text=True, check=False)
    assert no_driver.returncode != 0, "a core install must not bring the PostgreSQL driver"

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = re.findall(r"^```python\n(.*?)^```$", readme, flags=re.DOTALL | re.MULTILINE)
    work = tmp_path / "work"
    work.mkdir()
    for index, example in enumerate(examples):  # the first is the store example; the others need no extra either
        (work / f"example_{index}.py").write_text(example, encoding="utf-8")
        done = run(python, f"example_{index}.py", cwd=work, env=env)
        assert done.stdout.strip(), f"README example {index} printed nothing"
        if index == 0:
            assert "agt-1" in done.stdout and (work / "data" / "agents.db").is_file()

    helped = run(kode, "--help", cwd=work, env=env)
    assert "Usage: kode" in helped.stdout and "sessions" in helped.stdout
    listed = run(kode, "--store", "sqlite:data/agents.db", "sessions", "--json", cwd=work, env=env)
    assert '"agentId":"agt-1"' in listed.stdout

    hint = subprocess.run(
        [kode, "--store", "postgresql://kode@127.0.0.1:1/kode", "sessions"],
        cwd=work, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert hint.returncode == 1
    assert hint.stderr.strip().splitlines() == [
        "kode: error: the PostgreSQL store (psycopg and psycopg_pool) needs the 'postgres' extra: "
        "pip install 'kode-sdk[postgres]' (psycopg missing)"
    ]
