"""Store backends and what they share (see :mod:`kode_sdk.store.base`)."""
