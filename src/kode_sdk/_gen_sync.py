"""Generate ``kode_sdk/sync/_generated.py`` from the store protocols.

    python -m kode_sdk._gen_sync           # rewrite the file
    python -m kode_sdk._gen_sync --check   # exit 1 (and say so) when it is stale

Run it after adding or changing a method of ``Store``, ``QueryableStore`` or
``ExtendedStore``, or a parameter of ``create_store`` / ``create_extended_store``;
``tests/test_sync.py`` fails while the file is stale. The blocking methods
copy the async signatures (annotations as written, string or not), then:

* ``async def m(...) -> T``                          becomes ``def m(...) -> T``
* ``async def m(...) -> AgentLock``                  becomes ``def m(...) -> SyncAgentLock``
* ``def m(...) -> AsyncIterator[T]`` (or generator)   becomes ``def m(...) -> Iterator[T]``
* ``def m(...) -> AbstractAsyncContextManager[T]``   becomes ``def m(...) -> AbstractContextManager[T]``
  (``SyncAgentLock`` for ``T = AgentLock``)

Anything else stops the generator with a message saying which method and why,
rather than producing a facade that would call async code from the wrong thread.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET = Path(__file__).parent / "sync" / "_generated.py"

#: (blocking class, protocol, its blocking base) in inheritance order.
CLASSES = (
    ("SyncStore", "Store", "Facade"),
    ("SyncQueryableStore", "QueryableStore", "SyncStore"),
    ("SyncExtendedStore", "ExtendedStore", "SyncQueryableStore"),
)
#: (function in kode_sdk.store.factory, blocking class it returns).
FACTORIES = (("create_store", "SyncStore"), ("create_extended_store", "SyncExtendedStore"))
#: Written by hand in ``_facade.Facade``.
HAND_WRITTEN = frozenset({"open", "close", "closed"})

ASYNC_ITERATORS = frozenset({"AsyncIterator", "AsyncGenerator", "AsyncIterable"})
ASYNC_CONTEXTS = frozenset({"AbstractAsyncContextManager", "AsyncContextManager"})


class GenerationError(Exception):
    """The protocols hold something the generator does not know how to make blocking."""


@dataclass
class Imports:
    """Names the generated annotations need, as ``from module import name``."""

    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, attribute)
    modules: dict[str, str] = field(default_factory=dict)  # local -> module

    def add(self, local: str, module: str, attribute: str | None) -> None:
        wanted = (module, attribute)
        known = self.names.get(local) if attribute is not None else None
        if attribute is None:
            if local in self.names or self.modules.get(local, module) != module:
                raise GenerationError(f"two different objects are called {local!r} in the annotations")
            self.modules[local] = module
            return
        if (known is not None and known != wanted) or local in self.modules:
            raise GenerationError(f"two different objects are called {local!r} in the annotations")
        self.names[local] = (module, attribute)

    def lines(self) -> list[str]:
        out = []
        for local, module in sorted(self.modules.items()):
            out.append(f"import {module}" if local == module else f"import {module} as {local}")
        by_module: dict[str, list[str]] = {}
        for local, (module, attribute) in self.names.items():
            by_module.setdefault(module, []).append(attribute if attribute == local else f"{attribute} as {local}")
        for module in sorted(by_module):
            out.append(f"from {module} import {', '.join(sorted(by_module[module]))}")
        return out


def _where(obj: Any, local: str, home: str) -> tuple[str, str | None]:
    """Where the generated module imports ``obj`` from (module, attribute or None for a module)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__, None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "." not in qualname and module != "builtins":
        defining = sys.modules.get(module)
        if defining is not None and getattr(defining, qualname, None) is obj and not module.startswith("_"):
            return module, qualname
    # A type alias, a TypeVar, or a name re-exported from a private module:
    # import it from the module the protocol reads it from.
    return home, local


def _lookup(local: str, namespace: dict[str, Any]) -> Any:
    if local in namespace:
        return namespace[local]
    if hasattr(builtins, local):
        return getattr(builtins, local)
    # Imported under ``if TYPE_CHECKING:`` only: the public packages hold it.
    for candidate in ("kode_sdk", "kode_sdk.types", "kode_sdk.errors", "kode_sdk.store.base", "typing"):
        module = importlib.import_module(candidate)
        if hasattr(module, local):
            return getattr(module, local)
    raise GenerationError(f"cannot resolve {local!r}: not defined or imported where the protocol is")


class _Unquote(ast.NodeTransformer):
    """Forward references become plain expressions: ``AsyncIterator["Timeline"]``
    and ``AsyncIterator[ForwardRef('Timeline')]`` read as ``AsyncIterator[Timeline]``."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            inner: ast.AST = self.visit(ast.parse(node.value, mode="eval").body)
            return inner
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if ast.unparse(node.value).rsplit(".", 1)[-1] == "Literal":  # its strings are values, not names
            return node
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if ast.unparse(node.func).rsplit(".", 1)[-1] == "ForwardRef" and node.args:
            inner: ast.AST = self.visit(node.args[0])
            return inner
        return node


class Annotation:
    """One annotation as source text, with the names it needs imported."""

    def __init__(self, value: Any, namespace: dict[str, Any], home: str, imports: Imports, shadowed: set[str]):
        text = value if isinstance(value, str) else inspect.formatannotation(value)
        try:
            self.tree: ast.expr = _Unquote().visit(ast.parse(text, mode="eval").body)
        except SyntaxError as exc:
            raise GenerationError(f"annotation {text!r} is not an expression: {exc}") from None
        self.namespace, self.home, self.imports, self.shadowed = namespace, home, imports, shadowed

    def head(self) -> str | None:
        """The outermost name (``AsyncIterator`` of ``AsyncIterator[Timeline]``)."""
        node = self.tree.value if isinstance(self.tree, ast.Subscript) else self.tree
        if isinstance(node, ast.Attribute):
            return node.attr
        return node.id if isinstance(node, ast.Name) else None

    def argument(self) -> Annotation:
        """The first type argument (``Timeline`` of ``AsyncIterator[Timeline]``)."""
        if not isinstance(self.tree, ast.Subscript):
            raise GenerationError(f"{ast.unparse(self.tree)} has no type argument")
        inner = self.tree.slice.elts[0] if isinstance(self.tree.slice, ast.Tuple) else self.tree.slice
        copy = Annotation.__new__(Annotation)
        copy.tree, copy.namespace, copy.home, copy.imports, copy.shadowed = (
            inner,
            self.namespace,
            self.home,
            self.imports,
            self.shadowed,
        )
        return copy

    def render(self) -> str:
        """Source text for the generated module; records the imports it needs."""
        tree: ast.AST = _Qualify(self).visit(ast.parse(ast.unparse(self.tree), mode="eval").body)
        return ast.unparse(tree)


class _Qualify(ast.NodeTransformer):
    def __init__(self, annotation: Annotation) -> None:
        self.a = annotation

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if ast.unparse(node.value).rsplit(".", 1)[-1] == "Literal":  # its strings are values, not names
            node.value = self.visit(node.value)
            return node
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        raise GenerationError(f"cannot use {ast.unparse(node)!r} in an annotation")

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        parts = ast.unparse(node).split(".")
        if not all(part.isidentifier() for part in parts) or parts[0] in self.a.namespace:
            self.generic_visit(node)  # `contextlib.AbstractAsyncContextManager`: imports the module
            return node
        # A dotted path the protocol's module does not name (``collections.abc.Sequence``,
        # how formatannotation writes a non-string annotation): import the object itself.
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for part in parts[cut:]:
                obj = getattr(obj, part)
            module, attribute = _where(obj, parts[-1], ".".join(parts[:cut]))
            self.a.imports.add(parts[-1], module, attribute)
            return ast.Name(id=parts[-1], ctx=ast.Load())
        raise GenerationError(f"cannot resolve {'.'.join(parts)!r}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        obj = _lookup(node.id, self.a.namespace)
        if getattr(builtins, node.id, None) is obj:
            if node.id in self.a.shadowed:  # e.g. `list[str]` in a class that defines `list()`
                self.a.imports.add("builtins", "builtins", None)
                return ast.Attribute(value=ast.Name(id="builtins", ctx=ast.Load()), attr=node.id, ctx=ast.Load())
            return node
        module, attribute = _where(obj, node.id, self.a.home)
        self.a.imports.add(node.id, module, attribute)
        return node


@dataclass
class Method:
    """One protocol method and how its blocking form calls it."""

    name: str
    signature: str
    returns: str
    body: str
    doc: str


def _signature(
    sig: inspect.Signature, where: str, namespace: dict[str, Any], home: str, imports: Imports, shadowed: set[str]
) -> tuple[list[str], list[str]]:
    """Parameters as source (``self`` first when the signature has it) and how to forward them."""
    params = list(sig.parameters.values())
    rendered: list[str] = []
    forwarded: list[str] = []
    if params and params[0].name == "self":
        rendered.append("self")
        params = params[1:]
    star_written = False
    previous_kind = None
    for param in params:
        if previous_kind == param.POSITIONAL_ONLY and param.kind != param.POSITIONAL_ONLY:
            rendered.append("/")
        text = param.name
        if param.annotation is not param.empty:
            text += ": " + Annotation(param.annotation, namespace, home, imports, shadowed).render()
        if param.default is not param.empty:
            default = repr(param.default)
            try:
                ast.literal_eval(default)
            except (ValueError, SyntaxError):
                raise GenerationError(f"{where}: default of {param.name!r} ({default}) is not a literal") from None
            text += (" = " if param.annotation is not param.empty else "=") + default
        if param.kind == param.VAR_POSITIONAL:
            rendered.append("*" + text)
            forwarded.append("*" + param.name)
            star_written = True
        elif param.kind == param.VAR_KEYWORD:
            rendered.append("**" + text)
            forwarded.append("**" + param.name)
        elif param.kind == param.KEYWORD_ONLY:
            if not star_written:
                rendered.append("*")
                star_written = True
            rendered.append(text)
            forwarded.append(f"{param.name}={param.name}")
        else:
            rendered.append(text)
            forwarded.append(param.name)
        previous_kind = param.kind
    if previous_kind == inspect.Parameter.POSITIONAL_ONLY:
        rendered.append("/")
    return rendered, forwarded


def _async_class(annotation: Annotation) -> type | None:
    """The class an annotation names when it is a class with async methods of
    its own (a transaction, a cursor): its blocking form must be generated too."""
    for node in ast.walk(annotation.tree):
        if not isinstance(node, ast.Name):
            continue
        try:
            obj = _lookup(node.id, annotation.namespace)
        except GenerationError:
            continue
        if not isinstance(obj, type) or obj.__name__ == "AgentLock" or obj.__module__ == "builtins":
            continue
        if any(inspect.iscoroutinefunction(getattr(obj, n, None)) for n in dir(obj) if not n.startswith("_")):
            if not (isinstance(annotation.tree, ast.Name) and annotation.tree.id == node.id):
                raise GenerationError(
                    f"{ast.unparse(annotation.tree)}: {node.id} has async methods; only a bare {node.id} "
                    "can be wrapped in its generated blocking class"
                )
            return obj
    return None


class Context:
    """What one run of the generator collects: imports, and the blocking
    classes it must also write for classes with async methods (by name)."""

    def __init__(self) -> None:
        self.imports = Imports()
        self.wrappers: dict[str, type] = {}
        self.pending: list[type] = []

    def wrapper_for(self, cls: type) -> str:
        """The name of ``cls``'s generated blocking class (queued for writing)."""
        name = f"Sync{cls.__name__}"
        known = self.wrappers.get(name)
        if known is None:
            self.wrappers[name] = cls
            self.pending.append(cls)
        elif known is not cls:
            raise GenerationError(f"two different classes would both be wrapped as {name}")
        return name


def _method(
    owner: str, name: str, fn: Callable[..., Any], context: Context, shadowed: set[str], target_attr: str
) -> Method:
    imports = context.imports
    home = fn.__module__
    namespace = vars(sys.modules[home])
    where = f"{owner}.{name}"
    sig = inspect.signature(fn, eval_str=False)
    params, forwarded = _signature(sig, where, namespace, home, imports, shadowed)
    if not params or params[0] != "self":
        raise GenerationError(f"{where}: expected a method taking self first")
    if sig.return_annotation is sig.empty:
        raise GenerationError(f"{where}: no return annotation")
    returns = Annotation(sig.return_annotation, namespace, home, imports, shadowed)
    head = returns.head()
    target = f"self.{target_attr}.{name}"
    args = ", ".join([target, *forwarded])
    if inspect.iscoroutinefunction(fn):
        wrapped = _async_class(returns)
        if head == "AgentLock":
            imports.add("SyncAgentLock", "kode_sdk.sync._facade", "SyncAgentLock")
            result, body = "SyncAgentLock", f"return _facade.acquire_lock({args})"
        elif head in ASYNC_ITERATORS or head in ASYNC_CONTEXTS:
            raise GenerationError(f"{where}: an async def returning {head} is ambiguous; make it a plain def")
        elif wrapped is not None:
            result = context.wrapper_for(wrapped)
            body = f"return {result}(_runner.call({args}))"
        else:
            result, body = returns.render(), f"return _runner.call({args})"
    elif head in ASYNC_ITERATORS:
        item = returns.argument()
        if _async_class(item) is not None:
            raise GenerationError(f"{where}: iterating objects with async methods is not supported")
        imports.add("Iterator", "collections.abc", "Iterator")
        result, body = f"Iterator[{item.render()}]", f"return _runner.iterate({args})"
    elif head in ASYNC_CONTEXTS:
        imports.add("AbstractContextManager", "contextlib", "AbstractContextManager")
        inner = returns.argument()
        wrapped = _async_class(inner)
        if inner.head() == "AgentLock":
            imports.add("SyncAgentLock", "kode_sdk.sync._facade", "SyncAgentLock")
            result, body = "AbstractContextManager[SyncAgentLock]", f"return _facade.lock_context({args})"
        elif wrapped is not None:
            blocking = context.wrapper_for(wrapped)
            result = f"AbstractContextManager[{blocking}]"
            body = f"return _facade.wrapped_context({blocking}, {args})"
        else:
            result, body = f"AbstractContextManager[{inner.render()}]", f"return _facade.sync_context({args})"
    else:
        raise GenerationError(
            f"{where}: a plain def returning {ast.unparse(returns.tree)}: the generator only knows async defs, "
            "async iterators and async context managers; teach kode_sdk/_gen_sync.py this shape"
        )
    summary = (inspect.getdoc(fn) or "").strip()
    doc = f"Blocking :meth:`{owner}.{name}`." + (f"\n\n{summary}" if summary else "")
    return Method(name, ", ".join(params), result, body, doc)


def _own_methods(protocol: type, done: set[str]) -> Iterable[tuple[str, Callable[..., Any]]]:
    """The protocol's public methods not generated yet, bases first, each in definition order."""
    seen = set(done)
    for cls in reversed(protocol.__mro__):
        if cls.__module__ in ("builtins", "typing", "typing_extensions"):
            continue
        for name, value in vars(cls).items():
            if name.startswith("_") or name in HAND_WRITTEN or name in seen or not inspect.isfunction(value):
                continue
            seen.add(name)
            yield name, getattr(protocol, name)


def _method_lines(method: Method) -> list[str]:
    """The lines of one generated method (a blank line first)."""
    return [
        "",
        f"    def {method.name}({method.signature}) -> {method.returns}:",
        _docstring(method.doc, "        "),
        f"        {method.body}",
    ]


def _docstring(text: str, indent: str) -> str:
    body = textwrap.indent(text, indent).strip()
    return f'{indent}"""{body}\n{indent}"""' if "\n" in text else f'{indent}"""{body}"""'


def generate(protocols: dict[str, type] | None = None) -> str:
    """The text of ``_generated.py`` for the protocols as they are now
    (``protocols`` replaces some of them by name, for the generator's own tests)."""
    import kode_sdk
    from kode_sdk.store import factory

    context = Context()
    imports = context.imports
    chunks: list[str] = []
    done: set[str] = set(HAND_WRITTEN)
    for class_name, protocol_name, base in CLASSES:
        protocol = (protocols or {}).get(protocol_name) or getattr(kode_sdk, protocol_name)
        imports.add(protocol_name, "kode_sdk", protocol_name)
        own = list(_own_methods(protocol, done))
        # Inside the class body a method named like a builtin (``list``)
        # hides it from the annotations after it.
        shadowed = {name for name, _ in own} | {n for n in done if hasattr(builtins, n)}
        methods = [_method(f"kode_sdk.{protocol_name}", name, fn, context, shadowed, "async_store") for name, fn in own]
        done.update(name for name, _ in own)
        lines = [
            f"class {class_name}({base}):",
            _docstring(
                f"Blocking :class:`kode_sdk.{protocol_name}`: each method runs the async one on the "
                "kode_sdk.sync loop thread and returns its result.",
                "    ",
            ),
            "",
            f"    _protocol: ClassVar[type] = _kode.{protocol_name}",
            "",
            "    @property",
            f"    def async_store(self) -> {protocol_name}:",
            '        """The async store underneath. Await it only in coroutines run by :func:`kode_sdk.sync.call`."""',
            f"        return cast({protocol_name!r}, self._inner())",
        ]
        for method in methods:
            lines += _method_lines(method)
        chunks.append("\n".join(lines))

    while context.pending:
        cls = context.pending.pop(0)
        blocking = f"Sync{cls.__name__}"
        owner = f"{cls.__module__}.{cls.__qualname__}"
        module, attribute = _where(cls, cls.__name__, cls.__module__)
        imports.add(cls.__name__, module, attribute)
        own = list(_own_methods(cls, set()))
        shadowed = {name for name, _ in own if hasattr(builtins, name)}
        lines = [
            f"class {blocking}(_facade.Wrapped):",
            _docstring(f"Blocking :class:`{owner}`, as a method of a blocking store returns it.", "    "),
            "",
            f"    wrapped: {cls.__name__}",
        ]
        for name, fn in own:
            lines += _method_lines(_method(owner, name, fn, context, shadowed, "wrapped"))
        chunks.append("\n".join(lines))

    for function_name, class_name in FACTORIES:
        fn = getattr(factory, function_name)
        namespace = vars(sys.modules[fn.__module__])
        sig = inspect.signature(fn, eval_str=False)
        params, forwarded = _signature(sig, function_name, namespace, fn.__module__, imports, set())
        summary = (inspect.getdoc(fn) or "").split("\n\n")[0].strip()
        args = ", ".join([f"_factory.{function_name}", *forwarded])
        chunks.append(
            "\n".join(
                [
                    f"def {function_name}({', '.join(params)}) -> {class_name}:",
                    _docstring(
                        f"Blocking :func:`kode_sdk.{function_name}`, returning a :class:`{class_name}`.\n\n{summary}",
                        "    ",
                    ),
                    f"    return {class_name}._made_by(functools.partial({args}))",
                ]
            )
        )

    header = [
        '"""Blocking store classes and factories, generated from the async protocols.',
        "",
        "Do not edit: run ``python -m kode_sdk._gen_sync`` (see that module).",
        '"""',
        "",
        "# ruff: noqa: E501",
        "from __future__ import annotations",
        "",
        "import functools",
        "from typing import TYPE_CHECKING, ClassVar, cast",
        "",
        "import kode_sdk as _kode",
        "from kode_sdk.store import factory as _factory",
        "from kode_sdk.sync import _facade, _runner",
        "from kode_sdk.sync._facade import Facade",
        "",
        "if TYPE_CHECKING:",
        *("    " + line for line in imports.lines()),
        "",
        '__all__ = ["SyncExtendedStore", "SyncQueryableStore", "SyncStore", "create_extended_store", "create_store"]',
    ]
    return "\n".join(header) + "\n\n\n" + "\n\n\n".join(chunks) + "\n"


def _format(text: str) -> str:
    """Sort the imports and ``ruff format`` the text, as ``make lint`` wants it."""
    import shutil
    import subprocess

    beside = Path(sys.executable).with_name("ruff")
    ruff = str(beside) if beside.exists() else shutil.which("ruff") or "ruff"
    for command in (["check", "--fix", "--select", "I", "--exit-zero", "--quiet"], ["format", "--quiet"]):
        try:
            done = subprocess.run(
                [ruff, *command, "--stdin-filename", str(TARGET), "-"],
                input=text,
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise GenerationError(f"ruff {command[0]} failed ({exc}); install the dev extra") from None
        text = done.stdout
    return text


def main(argv: list[str] | None = None) -> int:
    """Command line: write the file, or ``--check`` that it is current."""
    parser = argparse.ArgumentParser(prog="python -m kode_sdk._gen_sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the generated file is stale")
    options = parser.parse_args(argv)
    try:
        text = _format(generate())
    except GenerationError as exc:
        print(f"kode_sdk.sync._gen: {exc}", file=sys.stderr)
        return 2
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if options.check:
        if current != text:
            print(f"{TARGET} is stale: run `python -m kode_sdk._gen_sync`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
