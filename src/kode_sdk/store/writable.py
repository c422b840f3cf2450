"""The one check that a folder can be written, behind every ``health_check``.

SqliteStore probes its folder, PostgresStore its file folder and
:func:`kode_sdk.ops.health.store_health` a file-backed store's root: all with
:func:`probe_writable`, so they report a failure the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..types import FileSystemHealth

__all__ = ["probe_writable"]


def probe_writable(directory: str | os.PathLike[str] | None, *, create: bool = False) -> FileSystemHealth:
    """Whether a file can be created and written in ``directory``.

    ``None`` (a store that keeps no files) is writable. With ``create`` the
    folder is made first if missing (a store that makes its own folder);
    without it a missing folder is a failure. The probe file is removed; the
    error names the folder and the operating system's reason.
    """
    if directory is None:
        return FileSystemHealth(writable=True)
    path = Path(directory)
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        # Writing a byte, not only creating the file, also catches a full disk.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".kode-health-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return FileSystemHealth(writable=False, error=f"{path}: {type(exc).__name__}: {exc.strerror or exc}")
    return FileSystemHealth(writable=True)
