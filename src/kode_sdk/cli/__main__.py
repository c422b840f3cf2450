"""``python -m kode_sdk.cli``: the ``kode`` command."""

from .app import main

if __name__ == "__main__":
    main()
