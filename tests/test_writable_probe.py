"""probe_writable: the folder check behind every health_check."""

from __future__ import annotations

from pathlib import Path

from kode_sdk.store.writable import probe_writable


def test_a_writable_folder_passes_and_keeps_no_probe_file(tmp_path: Path) -> None:
    assert probe_writable(tmp_path).writable
    assert list(tmp_path.iterdir()) == []


def test_a_store_without_files_is_writable() -> None:
    assert probe_writable(None).writable


def test_create_makes_the_missing_folder_and_without_it_a_missing_folder_fails(tmp_path: Path) -> None:
    missing = tmp_path / "a" / "b"
    health = probe_writable(missing)
    assert not health.writable and str(missing) in (health.error or "") and "FileNotFoundError" in (health.error or "")
    assert not missing.exists()
    assert probe_writable(missing, create=True).writable and missing.is_dir()


def test_a_folder_that_cannot_exist_names_the_folder_and_the_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    health = probe_writable(blocker / "store", create=True)
    assert not health.writable
    assert health.error is not None and str(blocker / "store") in health.error
    assert "FileExistsError" in health.error or "NotADirectoryError" in health.error
    assert blocker.read_text() == "not a folder"
