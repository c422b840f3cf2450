"""Build the three real backends from a plain, JSON-able spec, so a child
process can open the very store a test uses."""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

from kode_sdk.store.base import Store

BACKENDS = ("sqlite", "json", "postgres")
POSTGRES_URL = os.environ.get("KODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

_CLASSES = {
    "sqlite": ("kode_sdk.store.sqlite", "SqliteStore"),
    "json": ("kode_sdk.store.json_store", "JSONStore"),
    "postgres": ("kode_sdk.store.postgres", "PostgresStore"),
}


def store_class(backend: str) -> type[Any]:
    """The store class of ``backend`` (ImportError/AttributeError when not written yet)."""
    module, name = _CLASSES[backend]
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def postgres_supports_schema() -> bool:
    """Whether PostgresStore takes ``schema=`` (a throwaway schema per test)."""
    return "schema" in inspect.signature(store_class("postgres")).parameters


def open_store(spec: dict[str, Any]) -> Store:
    """A new, unopened store over the storage ``spec`` names."""
    backend = spec["backend"]
    cls = store_class(backend)
    if backend == "postgres":
        store: Store = cls(spec["dsn"], schema=spec["schema"])
    else:
        store = cls(spec["path"])
    return store
