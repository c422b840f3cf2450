"""Operations on whole stores: export/import, backups, retention, query filters.

Migration between backends lives in :mod:`kode_sdk.store.migrate`.
"""
