"""`--app module:attribute`: the workflows and graph tools of a user's module, found the way
uvicorn and gunicorn find an ASGI app.

The attribute (a dotted path: `module:holder.app` works) may be
- a `WorkflowCatalog` (actors.workflows.catalog): its workflows, and no graph tools;
- a `ToolRegistry` (actors.workflows.tools): its graph tools, and no workflows;
- an object with a `catalog` and/or a `tools` attribute of those types (an `App`, a class, a
  namespace): what it has; an attribute it lacks, or holds None, is served empty;
- a function of no arguments returning any of the above (a factory), called once.

What an app does not give is empty: with `--app`, the server serves the user's things alone,
never the demo's. Each way loading fails is an `AppNotLoaded` whose message is one line naming
what was wrong: a module not found, an error raised while importing the module (its type,
message and place), a missing attribute, an attribute of another kind (what was found and
what is accepted), a factory that takes arguments or raises.
"""

from __future__ import annotations

import importlib
import inspect
import reprlib
import sys
import traceback
from types import ModuleType

import attrs

from actors.workflows.catalog import WorkflowCatalog
from actors.workflows.tools import ToolRegistry

APP_KINDS = "a WorkflowCatalog, a ToolRegistry or an object with a `catalog` and/or `tools` attribute"
ACCEPTED = (
    "a WorkflowCatalog, a ToolRegistry, an object with a `catalog` and/or `tools` attribute, or"
    " a function of no arguments returning one of these"
)
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class AppNotLoaded(Exception):
    """The app of `--app` cannot be served; the message says why, in one line."""


@attrs.frozen
class App:
    """What a server serves: its workflows and its graph tools. A module may hold one for
    `--app` (`app = App(catalog, tools)`); `load_app` gives one."""

    catalog: WorkflowCatalog = attrs.field(factory=WorkflowCatalog)
    tools: ToolRegistry = attrs.field(factory=ToolRegistry)


@attrs.frozen
class AppSpec:
    """`module:attribute`, as `--app` takes it."""

    module: str
    attribute: str

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}"


def parse_app_spec(text: str) -> AppSpec:
    """`package.module:attribute` -> AppSpec; ValueError for anything else."""
    module, colon, attribute = text.partition(":")
    dotted = (module, attribute)
    if not colon or not all(part.isidentifier() for name in dotted for part in name.split(".")):
        raise ValueError(text)
    return AppSpec(module, attribute)


def load_app(spec: AppSpec, directory: str) -> App:
    """Import `spec.module` with `directory` first on Python's path (as uvicorn puts the
    current directory there), and make an App of its attribute."""
    return app_of(attribute_of(import_module(spec.module, directory), spec), spec)


def import_module(name: str, directory: str) -> ModuleType:
    if sys.path[:1] != [directory]:
        sys.path.insert(0, directory)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as missing:
        if missing.name is not None and (name == missing.name or name.startswith(f"{missing.name}.")):
            raise AppNotLoaded(
                f"no module named {missing.name!r} (looked in {directory}, then on Python's path)"
            ) from None
        raise AppNotLoaded(f"importing {name} raised {raised(missing)}") from None
    except Exception as failed:  # the user's module runs here: whatever it raises is reported
        raise AppNotLoaded(f"importing {name} raised {raised(failed)}") from None


def attribute_of(module: ModuleType, spec: AppSpec) -> object:
    found: object = module
    holder = f"module {spec.module!r}"
    for name in spec.attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise AppNotLoaded(f"{holder} has no attribute {name!r}{_candidates(module)}") from None
        holder = repr(name)
    return found


def app_of(found: object, spec: AppSpec) -> App:
    """The App `found` (the attribute `spec` names) stands for, calling it if it is a factory."""
    if _is_app(found):
        return _served(found, str(spec))
    if not callable(found):
        raise AppNotLoaded(f"{spec} is {_described(found)}, not {ACCEPTED}")
    if inspect.iscoroutinefunction(found):
        raise AppNotLoaded(f"{spec} is an async function; a factory is a plain function returning the app")
    try:
        inspect.signature(found).bind()
    except TypeError:
        raise AppNotLoaded(f"{spec} takes arguments; a factory takes none") from None
    except ValueError:
        pass  # no signature to read (a builtin): calling it tells
    try:
        made = found()
    except Exception as failed:  # the user's factory runs here: whatever it raises is reported
        raise AppNotLoaded(f"{spec} (a factory) raised {raised(failed)}") from None
    if not _is_app(made):
        raise AppNotLoaded(f"{spec} (a factory) returned {_described(made)}, not {APP_KINDS}")
    return _served(made, f"{spec}()")


def raised(error: BaseException) -> str:
    """`Type: message (at file:line)`, on one line: the line of the innermost frame, or of
    the code a SyntaxError is about."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{type(error).__name__}: {error.msg} (at {error.filename}:{error.lineno})"
    message = " ".join(str(error).split())
    shown = f"{type(error).__name__}: {message}" if message else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)
    return f"{shown} (at {frames[-1].filename}:{frames[-1].lineno})" if frames else shown


def _is_app(found: object) -> bool:
    if isinstance(found, (WorkflowCatalog, ToolRegistry)):
        return True
    return getattr(found, "catalog", None) is not None or getattr(found, "tools", None) is not None


def _served(found: object, shown: str) -> App:
    if isinstance(found, WorkflowCatalog):
        return App(catalog=found)
    if isinstance(found, ToolRegistry):
        return App(tools=found)
    catalog = getattr(found, "catalog", None)
    tools = getattr(found, "tools", None)
    if catalog is not None and not isinstance(catalog, WorkflowCatalog):
        raise AppNotLoaded(f"{shown}.catalog is {_described(catalog)}, not a WorkflowCatalog")
    if tools is not None and not isinstance(tools, ToolRegistry):
        raise AppNotLoaded(f"{shown}.tools is {_described(tools)}, not a ToolRegistry")
    return App(
        catalog=WorkflowCatalog() if catalog is None else catalog,
        tools=ToolRegistry() if tools is None else tools,
    )


def _described(found: object) -> str:
    kind = type(found).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind} ({_short.repr(found)})"


def _candidates(module: ModuleType) -> str:
    """` (it holds: catalog, tools)`: the module's catalogs, registries and Apps by name, or
    nothing if it has none."""
    names = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and isinstance(value, (WorkflowCatalog, ToolRegistry, App))
    )
    return f" (it holds: {', '.join(names)})" if names else ""
