"""web/app_loader.py: `--app module:attribute` on modules each test writes into its tmp dir,
imported for real; every accepted form, and every refusal as one line naming what was wrong."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from web.app_loader import App, AppNotLoaded, AppSpec, load_app, parse_app_spec

HEADER = """\
from types import SimpleNamespace

from actors import Workflow, WorkflowCatalog
from actors.workflows.tools import ToolRegistry
from web.app_loader import App


def step(ctx):
    return "done"


def count(state):
    return {"n": 1}


catalog = WorkflowCatalog()
catalog.add(Workflow("mine", "Mine", [step]))
tools = ToolRegistry()
tools.add(count)
"""

Load = Callable[..., App]


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Load]:
    """`load(source, attribute)`: write `source` (after HEADER) as a module of its own in the
    test's tmp dir and load `<module>:<attribute>` from that dir, as `runcast serve` does from
    the current one. Python's path and modules are as they were after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    written = 0

    def write_and_load(source: str, attribute: str, header: str = HEADER) -> App:
        nonlocal written
        written += 1
        name = f"user_app_{tmp_path.name}_{written}".replace("-", "_")
        (tmp_path / f"{name}.py").write_text(header + textwrap.dedent(source))
        importlib.invalidate_caches()
        return load_app(AppSpec(name, attribute), str(tmp_path))

    yield write_and_load
    for name in set(sys.modules) - before:
        del sys.modules[name]


def served(app: App) -> tuple[list[str], list[str]]:
    return [workflow.id for workflow in app.catalog], [tool.name for tool in app.tools]


def refusal(load: Load, source: str, attribute: str = "app", header: str = HEADER) -> str:
    with pytest.raises(AppNotLoaded) as refused:
        load(source, attribute, header)
    message = str(refused.value)
    assert "\n" not in message
    return message


# -- what an app may be ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("app = catalog", (["mine"], [])),
        ("app = tools", ([], ["count"])),
        ("app = App(catalog, tools)", (["mine"], ["count"])),
        ("app = App(tools=tools)", ([], ["count"])),
        ("app = SimpleNamespace(catalog=catalog, tools=tools)", (["mine"], ["count"])),
        ("app = SimpleNamespace(catalog=catalog)", (["mine"], [])),
        ("app = SimpleNamespace(tools=tools, catalog=None)", ([], ["count"])),
        ("class app:\n    catalog = catalog\n", (["mine"], [])),
        ("def app():\n    return catalog\n", (["mine"], [])),
        ("def app():\n    return tools\n", ([], ["count"])),
        ("def app():\n    return App(catalog, tools)\n", (["mine"], ["count"])),
        ("def app(prefix='x'):\n    return SimpleNamespace(tools=tools)\n", ([], ["count"])),
    ],
    ids=[
        "catalog", "tool-registry", "App", "App-tools-only", "namespace", "namespace-catalog-only",
        "namespace-catalog-None", "class", "factory-of-catalog", "factory-of-tools",
        "factory-of-App", "factory-with-defaults",
    ],
)
def test_each_kind_of_app_serves_what_it_gives_and_nothing_else(
    load: Load, source: str, expected: tuple[list[str], list[str]]
) -> None:
    assert served(load(source, "app")) == expected


def test_a_dotted_attribute_is_followed(load: Load) -> None:
    app = load("holder = SimpleNamespace(inner=SimpleNamespace(app=catalog))", "holder.inner.app")
    assert served(app) == (["mine"], [])


def test_a_factory_is_called_once(load: Load) -> None:
    app = load(
        """
        calls = []

        def make():
            calls.append(1)
            return App(catalog, tools)
        """,
        "make",
    )
    assert served(app) == (["mine"], ["count"])
    module = next(m for name, m in sys.modules.items() if name.startswith("user_app_"))
    assert module.calls == [1]


def test_the_directory_comes_first_on_pythons_path(tmp_path: Path, load: Load) -> None:
    """A module of the directory wins over one of the same name further on the path."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "shadowed_app.py").write_text("app = None\n")
    sys.path.insert(0, str(elsewhere))
    here = tmp_path / "here"
    here.mkdir()
    (here / "shadowed_app.py").write_text(HEADER + "app = tools\n")
    importlib.invalidate_caches()
    assert served(load_app(AppSpec("shadowed_app", "app"), str(here))) == ([], ["count"])
    assert sys.path[0] == str(here)
    del sys.modules["shadowed_app"]


# -- the spec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [("mymod:app", AppSpec("mymod", "app")), ("pkg.mod:holder.app", AppSpec("pkg.mod", "holder.app"))],
)
def test_a_spec_is_module_colon_attribute(text: str, spec: AppSpec) -> None:
    assert parse_app_spec(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    "text", ["mymod", "mymod:", ":app", "my-mod:app", "mymod:app()", "a:b:c", "pkg..mod:app", "", "mymod: app"]
)
def test_anything_else_is_no_spec(text: str) -> None:
    with pytest.raises(ValueError):
        parse_app_spec(text)


# -- refusals ----------------------------------------------------------------------------------


def test_a_module_not_found_is_named_with_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(AppNotLoaded) as refused:
        load_app(AppSpec("no_such_module_here", "app"), str(tmp_path))
    assert str(refused.value) == (
        f"no module named 'no_such_module_here' (looked in {tmp_path}, then on Python's path)"
    )


def test_a_missing_package_of_a_dotted_module_is_named(tmp_path: Path) -> None:
    with pytest.raises(AppNotLoaded) as refused:
        load_app(AppSpec("no_such_package.mod", "app"), str(tmp_path))
    assert str(refused.value).startswith("no module named 'no_such_package' (looked in")


def test_an_import_error_inside_the_module_names_it_and_where(load: Load, tmp_path: Path) -> None:
    message = refusal(load, "import not_installed_anywhere\napp = catalog\n")
    assert message.startswith("importing user_app_")
    assert "raised ModuleNotFoundError: No module named 'not_installed_anywhere'" in message
    assert f"(at {tmp_path}" in message and ".py:20)" in message  # the import's line
    message = refusal(load, "from actors import no_such_name\n")
    assert "raised ImportError: cannot import name 'no_such_name' from 'actors'" in message


def test_any_error_raised_while_importing_is_named(load: Load) -> None:
    message = refusal(load, "raise RuntimeError('the database is not\\nthere')\n")
    assert "raised RuntimeError: the database is not there (at " in message  # one line
    message = refusal(load, "def app(:\n    pass\n")
    assert "raised SyntaxError: invalid syntax (at " in message and ".py:20)" in message


def test_a_missing_attribute_is_named_with_what_the_module_holds(load: Load) -> None:
    message = refusal(load, "", "application")
    assert message.endswith("has no attribute 'application' (it holds: catalog, tools)")
    assert message.startswith("module 'user_app_")
    message = refusal(load, "holder = SimpleNamespace()\n", "holder.app")
    assert message == "'holder' has no attribute 'app' (it holds: catalog, tools)"
    assert refusal(load, "", "app", header="x = 1\n").endswith("has no attribute 'app'")


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("app = 'hello'", "a str ('hello')"),
        ("app = [catalog]", "a list ([<actors.workflows.catalog.Wo..."),  # cut short
        ("app = SimpleNamespace(other=1)", "a SimpleNamespace (namespace(other=1))"),
        ("app = None", "a NoneType (None)"),
    ],
)
def test_an_attribute_of_another_kind_says_what_it_is_and_what_is_accepted(
    load: Load, source: str, found: str
) -> None:
    message = refusal(load, source)
    assert f":app is {found}" in message
    assert message.endswith(
        ", not a WorkflowCatalog, a ToolRegistry, an object with a `catalog` and/or `tools`"
        " attribute, or a function of no arguments returning one of these"
    )


def test_a_catalog_or_tools_attribute_of_another_kind_is_named(load: Load) -> None:
    message = refusal(load, "app = SimpleNamespace(catalog=catalog, tools={'count': count})")
    assert ":app.tools is a dict ({'count': <function count at " in message
    assert message.endswith(", not a ToolRegistry")
    message = refusal(load, "def app():\n    return SimpleNamespace(catalog=[])\n")
    assert ":app().catalog is a list ([]), not a WorkflowCatalog" in message


def test_a_factory_that_raises_is_named_with_its_error(load: Load) -> None:
    message = refusal(load, "def app():\n    raise ValueError('no config')\n")
    assert ":app (a factory) raised ValueError: no config (at " in message
    assert message.endswith(".py:21)")


def test_a_factory_that_takes_arguments_or_is_async_is_refused_before_it_is_called(load: Load) -> None:
    message = refusal(load, "def app(settings):\n    raise AssertionError('called')\n")
    assert message.endswith(":app takes arguments; a factory takes none")
    message = refusal(load, "async def app():\n    return catalog\n")
    assert message.endswith(":app is an async function; a factory is a plain function returning the app")


def test_a_factory_returning_another_kind_says_what_it_returned(load: Load) -> None:
    message = refusal(load, "def app():\n    return app\n")
    assert ":app (a factory) returned a function (<function app at " in message
    assert message.endswith(
        ", not a WorkflowCatalog, a ToolRegistry or an object with a `catalog` and/or `tools`"
        " attribute"
    )
