"""Tools, templates and scripts shared by the agent tests and their child processes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kode_sdk.agent import AgentTemplate, ToolContext, ToolRegistry
from kode_sdk.agent.providers import text, tool_use


class SideEffects:
    """Counts tool runs in a file, so runs in any process are seen."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, name: str, payload: Any) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"tool": name, "payload": payload}) + "\n")

    def runs(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]
        return [r for r in rows if name is None or r["tool"] == name]


def make_registry(effects: SideEffects | None = None, block_marker: Path | None = None) -> ToolRegistry:
    """Tools: ``add`` (pure), ``explode`` (always raises), ``deploy`` (a side
    effect to count), ``block`` (writes a marker, then waits forever)."""
    registry = ToolRegistry()

    @registry.tool
    async def add(a: int, b: int = 0) -> int:
        """Add two integers.

        Args:
            a: The first term.
            b: The second term.
        """
        return a + b

    @registry.tool
    async def explode(reason: str = "boom") -> str:
        """Always fails."""
        raise RuntimeError(f"exploded: {reason}")

    @registry.tool
    async def deploy(env: str, context: ToolContext) -> str:
        """Deploy to an environment (a side effect worth approving).

        Args:
            env: Where to deploy.
        """
        if effects is not None:
            effects.record("deploy", {"env": env, "call_id": context.call_id})
        return f"deployed to {env}"

    @registry.tool
    async def block() -> str:
        """Wait forever (the crash test kills the process meanwhile)."""
        if block_marker is not None:
            await asyncio.to_thread(block_marker.write_text, "executing", encoding="utf-8")
        await asyncio.Event().wait()
        return "unreachable"

    return registry


TEMPLATE = AgentTemplate.coerce(
    {
        "id": "tester",
        "system_prompt": "You are a test agent.",
        "tools": ["add", "explode", "deploy", "block"],
        "require_approval": ["deploy"],
    }
)

CRASH_SCRIPT = [
    "Hello! This is the first answer.",
    [text("Blocking now."), tool_use("block", {})],
    "I see the blocking call was interrupted.",
]
