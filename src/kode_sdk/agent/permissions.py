"""Which tool calls need a human's approval, and which are refused outright.

>>> policy = PermissionPolicy(require_approval={"deploy"})
>>> policy.evaluate("deploy"), policy.evaluate("read_file")
('ask', 'allow')

Decisions are ``"allow"`` or ``"deny"``; a permission id is the id of the tool
call waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["Decision", "PermissionPolicy", "Verdict", "check_decision"]

Decision: TypeAlias = Literal["allow", "deny"]
Verdict: TypeAlias = Literal["allow", "ask", "deny"]


def check_decision(decision: object) -> Decision:
    """Validate a decision (``"allow"`` or ``"deny"``, any case)."""
    if isinstance(decision, str) and decision.lower() in ("allow", "deny"):
        return "allow" if decision.lower() == "allow" else "deny"
    raise ValueError(f"decision must be 'allow' or 'deny'; got {decision!r}")


def _names(value: Iterable[str] | str | None, key: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    names = frozenset(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ValueError(f"{key}: tool names must be non-empty strings; got {bad[0]!r}")
    return names


@dataclass(frozen=True, slots=True)
class PermissionPolicy:
    """Tool names needing approval (``"*"``: every tool) and tool names always denied."""

    require_approval: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)

    def __init__(self, require_approval: Iterable[str] | str | None = None, deny: Iterable[str] | str | None = None):
        object.__setattr__(self, "require_approval", _names(require_approval, "require_approval"))
        object.__setattr__(self, "deny", _names(deny, "deny"))

    def evaluate(self, tool_name: str) -> Verdict:
        """``"deny"``, ``"ask"`` (pause for a decision) or ``"allow"`` for a call of ``tool_name``."""
        if tool_name in self.deny or "*" in self.deny:
            return "deny"
        if tool_name in self.require_approval or "*" in self.require_approval:
            return "ask"
        return "allow"

    @classmethod
    def coerce(cls, value: PermissionPolicy | Mapping[str, Any] | None) -> PermissionPolicy:
        """Accept a policy or a dict with ``require_approval`` / ``deny`` (camelCase too)."""
        if value is None:
            return cls()
        if isinstance(value, PermissionPolicy):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"permission must be a dict or a PermissionPolicy, got {type(value).__name__}")
        unknown = set(value) - {"require_approval", "requireApproval", "deny"}
        if unknown:
            raise ValueError(f"permission: unknown key {sorted(unknown)[0]!r} (use require_approval, deny)")
        return cls(value.get("require_approval", value.get("requireApproval")), value.get("deny"))
