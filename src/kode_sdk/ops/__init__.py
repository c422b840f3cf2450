"""Operations on whole stores: export/import, backups, retention, query filters.

Copying between backends lives in :mod:`kode_sdk.ops.copy`.
"""
