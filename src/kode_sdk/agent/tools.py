"""Tools: plain (async) functions the model may call.

``@tool`` reads a function's signature and docstring and builds what the model
sees — name, description, JSON schema of the input — plus a validator for the
input it sends back::

    @tool
    async def add(a: int, b: int = 0) -> int:
        \"\"\"Add two integers.

        Args:
            a: The first term.
            b: The second term.
        \"\"\"
        return a + b

    add.name            # 'add'
    add.input_schema    # {'type': 'object', 'properties': {'a': {...}, 'b': {...}}, 'required': ['a'], ...}

A parameter annotated :class:`ToolContext` is filled by the agent (agent id,
call id, the agent itself) and left out of the schema. Decorated tools also go
into :data:`default_registry`, which templates consult for tool names; a
:class:`ToolRegistry` of your own keeps them apart.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import RecordValidationError
from ..jsoncodec import check_json
from .providers.base import ToolSpec
from .registry import Registry

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["Tool", "ToolContext", "ToolInputError", "ToolRegistry", "default_registry", "tool"]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a running tool may know about its call: whose it is and which one."""

    agent_id: str
    call_id: str
    agent: Agent


class ToolInputError(ValueError):
    """The model sent input that does not fit the tool's schema (it sees this message)."""


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")
_GOOGLE_PARAM = re.compile(r"^(\s+)\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_PARAM_SECTIONS = ("args", "arguments", "parameters", "params")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and per-parameter descriptions.

    Understands Google style (an ``Args:`` section) and Sphinx style (``:param x:``).

    >>> parse_docstring('''Add.
    ...
    ... Args:
    ...     a: The first
    ...         term.
    ... ''')
    ('Add.', {'a': 'The first term.'})
    """
    if not doc:
        return "", {}
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    param_indent: int | None = None
    for line in inspect.cleandoc(doc).splitlines():
        header = _SECTION.match(line)
        sphinx = _SPHINX_PARAM.match(line)
        if header:
            section, current, param_indent = header.group(1).lower(), None, None
        elif sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif line.startswith(":"):
            section, current = "sphinx", None  # :returns:, :raises: ...
        elif section is None:
            description.append(line)
        elif not line.strip():
            continue
        elif section in _PARAM_SECTIONS and (google := _GOOGLE_PARAM.match(line)) is not None:
            indent = len(google.group(1))
            if param_indent is None or indent <= param_indent:
                param_indent, current = indent, google.group(2)
                params[current] = google.group(3).strip()
            elif current is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
        elif current is not None and section in (*_PARAM_SECTIONS, "sphinx") and line.startswith(" "):
            params[current] = f"{params[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), params


def _strip_titles(schema: Any) -> Any:
    # pydantic adds a "title" to every schema node; models do better without the noise.
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                out[key] = {name: _strip_titles(sub) for name, sub in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


class Tool:
    """A callable the model may use: ``name``, ``description``, ``input_schema``.

    Calling ``await tool.run(input, context)`` validates ``input`` against the
    schema (raising :class:`ToolInputError` with a readable message) and calls
    the function with it. Build one with :func:`tool`.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a tool must be a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
        doc_description, param_docs = parse_docstring(fn.__doc__)
        self.description = description if description is not None else doc_description
        self._is_async = inspect.iscoroutinefunction(fn)
        self._context_param: str | None = None
        try:
            hints = get_type_hints(fn)
        except (NameError, TypeError):
            hints = {}
        fields: dict[str, Any] = {}
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"tool {self.name!r}: *args and **kwargs cannot be described to a model")
            if param.kind is param.POSITIONAL_ONLY:
                raise TypeError(f"tool {self.name!r}: positional-only parameter {param.name!r} is not supported")
            annotation = hints.get(param.name, Any)
            if annotation is ToolContext:
                self._context_param = param.name
                continue
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
        self._model: type[BaseModel] = create_model(
            f"{self.name}_input", __config__=ConfigDict(extra="forbid"), **fields
        )
        self.input_schema: dict[str, Any] = _strip_titles(self._model.model_json_schema())

    @property
    def spec(self) -> ToolSpec:
        """The tool as providers present it to the model."""
        return ToolSpec(name=self.name, description=self.description, input_schema=self.input_schema)

    def validate_input(self, input: Any) -> dict[str, Any]:
        """Check ``input`` against the schema; return the keyword arguments for the call."""
        if not isinstance(input, dict):
            raise ToolInputError(f"{self.name}: input must be a JSON object, got {type(input).__name__}")
        try:
            model = self._model.model_validate(input)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolInputError(f"invalid input for tool {self.name!r}: {problems}") from None
        return {key: getattr(model, key) for key in type(model).model_fields}

    async def run(self, input: Any, context: ToolContext | None = None) -> Any:
        """Validate ``input`` and call the function (sync functions run in a worker thread)."""
        kwargs = self.validate_input(input)
        if self._context_param is not None:
            if context is None:
                raise ToolInputError(f"tool {self.name!r} needs a ToolContext")
            kwargs[self._context_param] = context
        if self._is_async:
            return await self.fn(**kwargs)
        result = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation), as if undecorated."""
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    def __repr__(self) -> str:
        return f"<Tool {self.name!r}>"


def to_json_result(value: Any) -> Any:
    """A tool's return value as JSON for the record: models are dumped, other
    non-JSON values become their ``str``."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        check_json(value, "result")
    except RecordValidationError:
        return str(value)
    return value


class ToolRegistry(Registry[Tool]):
    """Tools by name.

    >>> registry = ToolRegistry()
    >>> @registry.tool
    ... async def ping() -> str:
    ...     \"\"\"Answer pong.\"\"\"
    ...     return "pong"
    >>> registry.names()
    ['ping']
    """

    _noun = "tool named"

    def __init__(self, tools: Sequence[Tool | Callable[..., Any]] = ()) -> None:
        super().__init__()
        for item in tools:
            self.register(item)

    def register(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a function, wrapped with :class:`Tool`). A name already
        taken by another tool raises ``ValueError`` unless ``replace=True``."""
        tool_obj = item if isinstance(item, Tool) else Tool(item)
        existing = self._items.get(tool_obj.name)
        if existing is not None and existing is not tool_obj and not replace:
            raise ValueError(f"a tool named {tool_obj.name!r} is already registered")
        self._items[tool_obj.name] = tool_obj
        return tool_obj

    def tool(self, fn: Callable[..., Any]) -> Tool:
        """Decorator: make ``fn`` a :class:`Tool` of this registry."""
        return self.register(fn)

    def get(self, name: str) -> Tool:
        """The tool called ``name``; ``KeyError`` naming the known tools otherwise."""
        return self._lookup(name)

    def resolve(self, items: Sequence[str | Tool | Callable[..., Any]]) -> list[Tool]:
        """Turn a template's tool list (names, tools or functions) into tools."""
        out: list[Tool] = []
        for item in items:
            if isinstance(item, str):
                out.append(self.get(item))
            elif isinstance(item, Tool):
                out.append(item)
            else:
                out.append(Tool(item))
        return out

    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._items)


default_registry = ToolRegistry()
"""Where ``@tool`` registers by default; templates look tool names up here."""


@overload
def tool(fn: Callable[..., Awaitable[Any]], /) -> Tool: ...
@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, registry: ToolRegistry | None = ...
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    registry: ToolRegistry | None = default_registry,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a :class:`Tool`; use bare (``@tool``) or with options
    (``@tool(name="fs_read", registry=None)``). ``registry=None`` registers
    nowhere. Re-decorating a name replaces the earlier tool of that name."""

    def wrap(func: Callable[..., Any]) -> Tool:
        made = Tool(func, name=name, description=description)
        if registry is not None:
            registry.register(made, replace=True)
        return made

    if fn is not None:
        return wrap(fn)
    return wrap
