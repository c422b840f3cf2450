"""``todo_write``: the tool through which a model keeps its todo list in the store."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .tools import ToolContext, tool

__all__ = ["TodoEntry", "todo_write"]


class TodoEntry(BaseModel):
    """One todo as the model writes it."""

    id: str
    title: str
    status: Literal["pending", "in_progress", "completed"] = "pending"


@tool
async def todo_write(todos: list[TodoEntry], context: ToolContext) -> str:
    """Replace your todo list with the given items.

    Args:
        todos: The whole list: each item has an id, a title and a status
            (pending, in_progress or completed).
    """
    snapshot = await context.agent.set_todos([todo.model_dump() for todo in todos])
    done = sum(todo.status == "completed" for todo in snapshot.todos)
    return f"todo list saved (version {snapshot.version}): {done}/{len(snapshot.todos)} completed"
