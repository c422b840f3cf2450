"""A query's WHERE clause built filter by filter, for any SQL backend: the
conditions and their parameters in order, in the backend's placeholder style
(``?`` for SQLite, ``%s`` for PostgreSQL). Filters given as ``None`` are left
out, so a query primitive (:mod:`~kode_sdk.store.queries`: its request is
already validated) states each of its filters in one line.

>>> where = Where("?", "template_id IS NOT NULL")
>>> where.equal("role", "user")
>>> where.equal("name", None)
>>> where.compare("created_at", ">=", 5)
>>> where.sql(), where.params
('WHERE template_id IS NOT NULL AND role = ? AND created_at >= ? ', ['user', 5])
"""

from __future__ import annotations

from typing import Any

__all__ = ["Where", "check_str"]


def check_str(value: object, name: str) -> str:
    """``value`` if it is a str, else :class:`ValueError` naming ``name``
    (unlike :func:`~kode_sdk.store.policy.check_text`, NUL is let through)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str; got {type(value).__name__}")
    return value


class Where:
    """The conditions of one WHERE clause (``conditions`` first) and the
    parameters they bind, in order."""

    __slots__ = ("conditions", "params", "placeholder")

    def __init__(self, placeholder: str, *conditions: str) -> None:
        self.placeholder = placeholder
        self.conditions = list(conditions)
        self.params: list[Any] = []

    def add(self, condition: str, *params: Any) -> None:
        """``condition`` as written (its placeholders bind ``params``)."""
        self.conditions.append(condition)
        self.params.extend(params)

    def compare(self, column: str, operator: str, value: Any) -> None:
        """``column <operator> value``, unless ``value`` is None."""
        if value is not None:
            self.conditions.append(f"{column} {operator} {self.placeholder}")
            self.params.append(value)

    def equal(self, column: str, value: Any) -> None:
        """``column = value``, unless ``value`` is None."""
        self.compare(column, "=", value)

    def sql(self) -> str:
        """``WHERE c1 AND c2 … `` (with a trailing space), or ``""`` without conditions."""
        return f"WHERE {' AND '.join(self.conditions)} " if self.conditions else ""
