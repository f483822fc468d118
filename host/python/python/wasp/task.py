"""`@wasp.task`: a Python function with type annotations becomes a task
component, run sandboxed on the engines.

    @wasp.task
    def area(w: int, h: int) -> int:
        return w * h

    lview.map(area, widths, heights)   # each call runs in a WebAssembly sandbox
    area(2, 3)                         # called directly, it is the plain function

The annotations become a WIT signature (`area: func(w: s64, h: s64) -> s64`);
the function's source, with that signature, becomes a component built by
componentize-py, cached by the hash of what goes into it, so that it is built
once per source and signature on a machine. Everything is checked when the
decorator runs, before anything is built: a function the sandbox cannot run
as it stands gets an error that says which part and why.

The types: `int` (s64), `float` (f64), `str` (string), `bool`, `bytes`
(list<u8>), `list[T]`, `tuple[A, B, ...]`, `Optional[T]` (or `T | None`),
and dataclasses (records; their fields annotated the same way). A result of
`None` (or no `return`) is written `-> None`.

The function runs alone in the sandbox: it sees its arguments, the modules it
imports (inside it, or as module-level imports it uses, which are repeated
in the component), the dataclasses of its signature, and Python's builtins.
A closure over outer variables, or a module-level value it reads, is refused,
since the sandbox cannot see them: pass them as arguments.
"""

from __future__ import annotations

import dataclasses
import dis
import functools
import hashlib
import inspect
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import types
import typing
from pathlib import Path

__all__ = ["task", "Task", "TaskDefinitionError"]


class TaskDefinitionError(TypeError):
    """A function cannot become a task: the message says which part and why."""


# WIT's keywords, which a name must escape with `%`.
_WIT_KEYWORDS = {
    "as", "async", "bool", "borrow", "char", "constructor", "enum", "export", "f32", "f64",
    "flags", "from", "func", "future", "import", "include", "interface", "list", "option",
    "own", "package", "record", "resource", "result", "s16", "s32", "s64", "s8", "static",
    "stream", "string", "tuple", "type", "u16", "u32", "u64", "u8", "use", "variant", "with",
    "world", "error-context",
}

_SUPPORTED = (
    "int, float, str, bool, bytes, list[...], tuple[...], Optional[...] or a dataclass"
)


def _kebab(name: str, what: str) -> str:
    """A Python identifier as a WIT one: `sleep_here` -> `sleep-here`,
    `OptionPrice` -> `option-price`."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().strip("_").split("_")
    words = [w for w in words if w]
    if not words or any(not re.fullmatch(r"[a-z][a-z0-9]*", w) for w in words):
        raise TaskDefinitionError(
            f"{what} `{name}` has no WIT name: each part between underscores must "
            "start with a letter (e.g. `x2`, not `x_2`)"
        )
    wit = "-".join(words)
    return f"%{wit}" if wit in _WIT_KEYWORDS else wit


class _Signature:
    """The WIT of a function's annotations: its parameters, result and the
    records (dataclasses) they use."""

    def __init__(self, func):
        self.func = func
        self.records: dict[type, str] = {}
        self._record_wit: list[str] = []
        name = func.__name__
        if name == "<lambda>":
            raise TaskDefinitionError(
                "a lambda cannot be a task: write it as a def with annotations, e.g. "
                "`def pow10(x: int) -> int: return x**10`"
            )
        self.name = _kebab(name, "the function")
        sig = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func)
        except Exception as err:  # a forward reference that does not resolve
            raise TaskDefinitionError(f"{name}: its annotations do not resolve: {err}") from None
        params = []
        for param in sig.parameters.values():
            where = f"{name}: argument `{param.name}`"
            if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                raise TaskDefinitionError(
                    f"{where} is {param.kind.description}: a task takes plain positional arguments"
                )
            if param.default is not param.empty:
                raise TaskDefinitionError(f"{where} has a default value: WIT has none; pass it in each call")
            if param.name not in hints:
                raise TaskDefinitionError(f"{where} has no type annotation: annotate it ({_SUPPORTED})")
            params.append(f"{_kebab(param.name, 'argument')}: {self.wit_type(hints[param.name], where)}")
        if "return" not in hints:
            raise TaskDefinitionError(
                f"{name}: its result has no type annotation: add one (`-> None` if it returns nothing)"
            )
        result = hints["return"]
        returns = "" if result is type(None) else f" -> {self.wit_type(result, f'{name}: its result')}"
        self.func_wit = f"{self.name}: func({', '.join(params)}){returns};"

    def wit_type(self, hint, where: str) -> str:
        """The WIT type of annotation `hint`; `where` names it in errors."""
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is bool:
            return "bool"
        if hint is int:
            return "s64"
        if hint is float:
            return "f64"
        if hint is str:
            return "string"
        if hint is bytes:
            return "list<u8>"
        if origin in (list, typing.List) and len(args) == 1:
            return f"list<{self.wit_type(args[0], where)}>"
        if origin in (tuple, typing.Tuple) and args and Ellipsis not in args:
            return f"tuple<{', '.join(self.wit_type(a, where) for a in args)}>"
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                return f"option<{self.wit_type(rest[0], where)}>"
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return self.record(hint, where)
        raise TaskDefinitionError(f"{where}: {_describe(hint)} has no WIT form; use {_SUPPORTED}")

    def record(self, cls: type, where: str) -> str:
        if cls in self.records:
            return self.records[cls]
        wit_name = _kebab(cls.__name__, "the dataclass")
        self.records[cls] = wit_name
        hints = typing.get_type_hints(cls)
        fields = []
        for field in dataclasses.fields(cls):
            at = f"{where}: field `{field.name}` of {cls.__name__}"
            fields.append(f"    {_kebab(field.name, 'field')}: {self.wit_type(hints[field.name], at)},")
        self._record_wit.append(f"  record {wit_name} {{\n" + "\n".join(fields) + "\n  }")
        return wit_name

    def wit(self, package: str) -> str:
        """The WIT package of the task: one interface, `ops`, exported."""
        body = "\n".join(self._record_wit + [f"  {self.func_wit}"])
        return (
            f"package {package};\n\ninterface ops {{\n{body}\n}}\n\n"
            "world task {\n  export ops;\n}\n"
        )


def _describe(hint) -> str:
    return getattr(hint, "__name__", None) or repr(hint)


def _globals_read(code: types.CodeType) -> set[str]:
    """The global names `code` (and the code nested in it) reads."""
    names = {
        ins.argval
        for ins in dis.get_instructions(code)
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals_read(const)
    return names


def _source(func) -> str:
    """The function's own source, dedented, without its decorators."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as err:
        raise TaskDefinitionError(
            f"{func.__name__}: its source cannot be read ({err}); define it in a file or a notebook cell"
        ) from None
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))), None)
    if start is None or lines[start].lstrip().startswith("async def"):
        raise TaskDefinitionError(f"{func.__name__}: only a plain `def` can be a task")
    return "\n".join(lines[start:]) + "\n"


def _preamble(func, sig: _Signature) -> list[str]:
    """The lines that give the function, in the sandbox, the globals it
    reads: its modules' imports and its records' classes; an error for any
    other global."""
    if func.__code__.co_freevars:
        names = ", ".join(f"`{n}`" for n in func.__code__.co_freevars)
        raise TaskDefinitionError(
            f"{func.__name__} is a closure over {names}: the sandbox cannot see outer "
            "variables; pass them as arguments"
        )
    lines = []
    builtins = func.__builtins__ if isinstance(func.__builtins__, dict) else vars(func.__builtins__)
    records = {cls.__name__: wit for cls, wit in sig.records.items()}
    for name in sorted(_globals_read(func.__code__)):
        if name == func.__name__:
            continue  # recursion
        if name in records:
            generated = "".join(part.capitalize() for part in records[name].lstrip("%").split("-"))
            lines.append(f"from wit_world.exports.ops import {generated} as {name}")
            continue
        value = func.__globals__.get(name, builtins.get(name, _MISSING))
        if isinstance(value, types.ModuleType):
            lines.append(f"import {value.__name__} as {name}" if value.__name__ != name else f"import {name}")
        elif name in builtins:
            continue
        elif value is _MISSING:
            raise TaskDefinitionError(f"{func.__name__} reads `{name}`, which is not defined")
        else:
            raise TaskDefinitionError(
                f"{func.__name__} reads the global `{name}` ({type(value).__name__}): the sandbox "
                "runs the function alone; define it inside the function or pass it as an argument"
            )
    return lines


_MISSING = object()


def _componentize_py() -> str:
    """The componentize-py command: $WASP_COMPONENTIZE_PY, on the PATH, or
    the one scripts/setup installs in a checkout (target/py-venv)."""
    found = os.environ.get("WASP_COMPONENTIZE_PY") or shutil.which("componentize-py")
    if found:
        return found
    checkout = Path(__file__).resolve().parents[4] / "target" / "py-venv" / "bin" / "componentize-py"
    if checkout.is_file():
        return str(checkout)
    raise TaskDefinitionError(
        "componentize-py is needed to build a @wasp.task: `pip install componentize-py==0.25.*`, "
        "or set WASP_COMPONENTIZE_PY"
    )


def _cache_dir() -> Path:
    base = os.environ.get("WASP_TASK_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "wasp" / "tasks"


class Task:
    """A `@wasp.task` function: called directly, the plain Python function;
    given to a view, its component, built on first use (`build()`)."""

    def __init__(self, func):
        functools.update_wrapper(self, func)
        self.func = func
        sig = _Signature(func)
        app = _preamble(func, sig)
        self._source = _source(func)
        # The export's name as the bindings and `wasp.Module` spell it.
        self._python_name = sig.name.lstrip("%").replace("-", "_")
        digest_input = "\n".join([sig.func_wit, "\n".join(app), self._source])
        self.hash = hashlib.sha256(digest_input.encode()).hexdigest()
        #: The task's WIT package.
        self.wit = sig.wit(f"wasp:task-{self.hash[:16]}")
        self._app = "\n".join(
            ["from wit_world import exports", *app, "", self._source, "",
             "class Ops(exports.Ops):",
             f"    def {self._python_name}(self, *args):",
             f"        return {func.__name__}(*args)", ""]
        )
        self._function = None

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<wasp.task {self.signature}>"

    @property
    def signature(self) -> str:
        """The WIT signature, e.g. `area: func(w: s64, h: s64) -> s64`."""
        return next(line.strip().rstrip(";") for line in self.wit.splitlines() if ": func(" in line)

    def build(self) -> Path:
        """The component's path, building it if no cached build of the same
        source and signature exists."""
        cache = _cache_dir()
        tool = _componentize_py()
        wasm = cache / f"{self.func.__name__}-{self.hash[:32]}.wasm"
        if wasm.is_file():
            return wasm
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="wasp-task-") as tmp:
            tmp = Path(tmp)
            (tmp / "wit").mkdir()
            (tmp / "wit" / "task.wit").write_text(self.wit)
            (tmp / "app.py").write_text(self._app)
            done = subprocess.run(
                [tool, "-d", "wit", "-w", "task", "componentize", "app", "-o", "task.wasm"],
                cwd=tmp, capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise TaskDefinitionError(
                    f"componentize-py could not build {self.func.__name__}:\n"
                    f"{done.stderr.strip() or done.stdout.strip()}"
                )
            partial = cache / f".{wasm.name}.{os.getpid()}"
            shutil.move(str(tmp / "task.wasm"), partial)
            os.replace(partial, wasm)
        return wasm

    @property
    def __wasp_function__(self):
        """The export a view calls (a `wasp.Function`), once built."""
        if self._function is None:
            from . import Module

            self._function = getattr(Module(self.build()), self._python_name)
        return self._function


def task(func=None):
    """Makes an annotated function a task (see the module documentation);
    `@wasp.task` and `@wasp.task()` are the same."""
    if func is None:
        return task
    return Task(func)
