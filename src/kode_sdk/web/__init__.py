"""The session browser of ``kode serve`` (HTML pages, charts, the stylesheet)
and the token check that guards the whole server.

- :mod:`.pages`: the routes and their rendering (Jinja templates in
  ``templates/``, autoescaped);
- :mod:`.charts`: geometry of the inline SVG charts;
- :mod:`.auth`: the bind rule and the token middleware.
"""

from __future__ import annotations

from .auth import TOKEN_ENV, RedactTokenFilter, TokenGate, check_bind, is_loopback
from .pages import page_routes

__all__ = ["TOKEN_ENV", "RedactTokenFilter", "TokenGate", "check_bind", "is_loopback", "page_routes"]
