"""The server fixture's contract: no server means a visible skip, or a failure
when KODE_REQUIRE_POSTGRES=1 (as CI sets it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]


def run_without_server(require: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["KODE_TEST_POSTGRES_URL"] = f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"  # nobody listens
    env.pop("KODE_REQUIRE_POSTGRES", None)
    if require:
        env["KODE_REQUIRE_POSTGRES"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/postgres/test_postgres_store.py::test_lifecycle",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_server_skips_with_a_visible_notice() -> None:
    done = run_without_server(require=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "NOTICE: PostgreSQL tests skipped" in done.stdout


def test_no_server_fails_when_postgres_is_required() -> None:
    done = run_without_server(require=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "KODE_REQUIRE_POSTGRES=1" in done.stdout
