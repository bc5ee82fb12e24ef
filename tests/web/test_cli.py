"""The `runcast` command of web/cli.py: options from flags, environment variables and a `--config`
file, their precedence, one-line refusals, `--app`; and real `runcast serve` processes: stopped
by SIGTERM, serving a user's module (an App, a factory, a tool registry, the README's example),
configured by a file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
import click
import httpx
import pytest
from websockets.sync.client import connect

from web.app_loader import AppSpec
from web.cli import (
    OPTIONS,
    Refusal,
    configuration_of,
    demo_from,
    env_name,
    main,
    serve_command,
    served_app,
    settings_from,
)
from web.demo import Demo
from web.server import Settings

RUNCAST = Path(sys.executable).parent / "runcast"
REPO = Path(__file__).resolve().parents[2]
TERMINAL = ("WorkflowCompleted", "WorkflowError")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RUNCAST_* variable from the surrounding shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RUNCAST_"):
            monkeypatch.delenv(name)


def parse(*argv: str | Path) -> click.Context:
    """`runcast serve ARGV` parsed (flags, environment, config file), not served."""
    return serve_command.make_context("serve", [str(arg) for arg in argv])


def configured(settings: Settings, demo: Demo) -> dict[str, Any]:
    """What `runcast serve` runs with by option name: the server's settings, and the demo's as
    `demo_<field>`."""
    demo_fields = {f"demo_{name}": value for name, value in attrs.asdict(demo).items()}
    return {**attrs.asdict(settings), **demo_fields}


def configured_by(ctx: click.Context) -> dict[str, Any]:
    return {
        **configured(settings_from(ctx.params), demo_from(ctx.params)),
        "log_level": ctx.params["log_level"],
        "app": ctx.params["app"],
    }


DEFAULT_CONFIGURATION = {**configured(Settings(), Demo()), "log_level": "INFO", "app": None}


def test_defaults() -> None:
    ctx = parse()
    assert settings_from(ctx.params) == Settings(
        host="127.0.0.1",
        port=7777,
        store="sqlite:./runcast.db",
        token=None,
        shutdown_grace=0.0,
        max_message_size=1024 * 1024,
        feed_capacity=1024,
        graph_max_iterations=1000,
        max_run_events=1_000_000,
        allowed_origins=None,
    )
    assert demo_from(ctx.params) == Demo(step_delay=1.25, steps=8, progress=2)
    assert ctx.params["log_level"] == "INFO"
    assert configuration_of(ctx).served == Demo()


def test_env_names() -> None:
    assert env_name("port") == "RUNCAST_PORT"
    assert env_name("demo-step-delay") == "RUNCAST_DEMO_STEP_DELAY"
    assert {env_name(option.name) for option in OPTIONS} >= {
        "RUNCAST_HOST", "RUNCAST_PORT", "RUNCAST_STORE", "RUNCAST_DEMO_STEP_DELAY",
        "RUNCAST_DEMO_STEPS", "RUNCAST_DEMO_PROGRESS", "RUNCAST_TOKEN", "RUNCAST_SHUTDOWN_GRACE",
        "RUNCAST_MAX_MESSAGE_SIZE", "RUNCAST_FEED_CAPACITY", "RUNCAST_LOG_LEVEL",
        "RUNCAST_GRAPH_MAX_ITERATIONS", "RUNCAST_MAX_RUN_EVENTS", "RUNCAST_ALLOWED_ORIGINS",
        "RUNCAST_APP",
    }
    help_text = serve_command.get_help(parse())
    for option in OPTIONS:
        assert env_name(option.name) in help_text
    assert "RUNCAST_CONFIG" in help_text


# -- flags and environment variables ---------------------------------------------------------------

# (env var, its text, Settings/Demo/params attribute, expected value, a flag value that differs)
FROM_ENV: list[tuple[str, str, str, Any, str, Any]] = [
    ("RUNCAST_HOST", "0.0.0.0", "host", "0.0.0.0", "::1", "::1"),
    ("RUNCAST_PORT", "8123", "port", 8123, "9000", 9000),
    ("RUNCAST_STORE", "memory", "store", "memory", "sqlite:/tmp/x.db", "sqlite:/tmp/x.db"),
    ("RUNCAST_DEMO_STEP_DELAY", "0.5", "demo_step_delay", 0.5, "0", 0.0),
    ("RUNCAST_DEMO_STEPS", "3", "demo_steps", 3, "12", 12),
    ("RUNCAST_DEMO_PROGRESS", "0", "demo_progress", 0, "5", 5),
    ("RUNCAST_TOKEN", "abc", "token", "abc", "xyz", "xyz"),
    ("RUNCAST_SHUTDOWN_GRACE", "2.5", "shutdown_grace", 2.5, "7", 7.0),
    ("RUNCAST_MAX_MESSAGE_SIZE", "2048", "max_message_size", 2048, "4096", 4096),
    ("RUNCAST_FEED_CAPACITY", "16", "feed_capacity", 16, "64", 64),
    ("RUNCAST_GRAPH_MAX_ITERATIONS", "50", "graph_max_iterations", 50, "1", 1),
    ("RUNCAST_MAX_RUN_EVENTS", "5000", "max_run_events", 5000, "3", 3),
    ("RUNCAST_ALLOWED_ORIGINS", "HTTP://App.Example:80, http://[::1]:3000", "allowed_origins",
     ("http://app.example", "http://[::1]:3000"), "*", ("*",)),
    ("RUNCAST_NODE_ID", "web1", "node_id", "web1", "web2", "web2"),
    ("RUNCAST_LEASE_TTL", "20", "lease_ttl", 20.0, "30.5", 30.5),
    ("RUNCAST_LEASE_RENEW", "1.5", "lease_renew", 1.5, "2", 2.0),
    ("RUNCAST_RETENTION", "60", "retention", 60.0, "0.5", 0.5),
    ("RUNCAST_LOG_LEVEL", "debug", "log_level", "DEBUG", "WARNING", "WARNING"),
    ("RUNCAST_APP", "mymod:app", "app", AppSpec("mymod", "app"), "pkg.mod:make", AppSpec("pkg.mod", "make")),
]


def test_every_option_has_its_cases() -> None:
    assert {attr for _, _, attr, *_ in FROM_ENV} == {option.param for option in OPTIONS}
    assert set(FROM_FILE) == {option.param for option in OPTIONS}


@pytest.mark.parametrize(("env", "text", "attr", "value", "_flag", "_flag_value"), FROM_ENV)
def test_every_option_reads_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, text: str, attr: str, value: Any, _flag: str, _flag_value: Any
) -> None:
    monkeypatch.setenv(env, text)
    configuration = configured_by(parse())
    assert configuration[attr] == value
    assert type(configuration[attr]) is type(value)
    others = {k: v for k, v in configuration.items() if k != attr}
    assert others == {k: v for k, v in DEFAULT_CONFIGURATION.items() if k != attr}


@pytest.mark.parametrize(("env", "text", "attr", "_value", "flag", "flag_value"), FROM_ENV)
def test_a_flag_beats_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, text: str, attr: str, _value: Any, flag: str, flag_value: Any
) -> None:
    monkeypatch.setenv(env, text)
    option = "--" + attr.replace("_", "-")
    assert configured_by(parse(option, flag))[attr] == flag_value


def test_a_flag_beats_a_bad_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_PORT", "not-a-port")
    assert settings_from(parse("--port", "8001").params).port == 8001


def test_an_empty_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_TOKEN", "")
    assert settings_from(parse().params).token is None
    assert settings_from(parse("--token", "").params).token is None


def test_an_empty_allowed_origins_allows_no_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_ALLOWED_ORIGINS", "")
    assert settings_from(parse().params).allowed_origins == ()
    assert settings_from(parse("--allowed-origins", "").params).allowed_origins == ()


def test_with_app_the_demo_is_not_served() -> None:
    assert configuration_of(parse("--app", "mymod:app")).served == AppSpec("mymod", "app")


# -- the config file -------------------------------------------------------------------------------

# by attribute: (the TOML line, the value it gives); keys with dashes and with underscores
FROM_FILE: dict[str, tuple[str, Any]] = {
    "host": ('host = "0.0.0.0"', "0.0.0.0"),
    "port": ("port = 8123", 8123),
    "store": ('store = "sqlite:x.db"', "sqlite:x.db"),
    "demo_step_delay": ("demo-step-delay = 0", 0.0),
    "demo_steps": ("demo_steps = 3", 3),
    "demo_progress": ("demo-progress = 0", 0),
    "token": ('token = "abc"', "abc"),
    "shutdown_grace": ("shutdown-grace = 2.5", 2.5),
    "max_message_size": ("max_message_size = 2048", 2048),
    "feed_capacity": ("feed-capacity = 16", 16),
    "graph_max_iterations": ("graph-max-iterations = 50", 50),
    "max_run_events": ("max-run-events = 5_000", 5000),
    "allowed_origins": ('allowed-origins = ["HTTP://App.Example:80", "http://[::1]:3000"]',
                        ("http://app.example", "http://[::1]:3000")),
    "node_id": ('node-id = "web1"', "web1"),
    "lease_ttl": ("lease_ttl = 20", 20.0),
    "lease_renew": ("lease-renew = 1.5", 1.5),
    "retention": ("retention = 60", 60.0),
    "log_level": ('log-level = "warning"', "WARNING"),
    "app": ('app = "mymod:app"', AppSpec("mymod", "app")),
}


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Any]:
    """`config_file(*lines)` -> the path of a TOML file holding them."""

    def write(*lines: str) -> Path:
        path = tmp_path / "runcast.toml"
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    yield write


@pytest.mark.parametrize("attr", FROM_FILE)
def test_every_option_can_be_set_by_the_config_file(config_file: Any, attr: str) -> None:
    line, value = FROM_FILE[attr]
    configuration = configured_by(parse("--config", config_file(line)))
    assert configuration[attr] == value
    assert type(configuration[attr]) is type(value)
    others = {k: v for k, v in configuration.items() if k != attr}
    assert others == {k: v for k, v in DEFAULT_CONFIGURATION.items() if k != attr}


def test_one_file_sets_many_options_and_a_string_may_list_origins(config_file: Any) -> None:
    path = config_file(
        "# runcast serve", "port = 8123", 'store = "memory"', "demo_step_delay = 0.25",
        'allowed-origins = "https://a.example,https://b.example"',
    )
    configuration = configured_by(parse("--config", path))
    assert configuration == {
        **DEFAULT_CONFIGURATION, "port": 8123, "store": "memory", "demo_step_delay": 0.25,
        "allowed_origins": ("https://a.example", "https://b.example"),
    }


@pytest.mark.parametrize(("env", "text", "attr", "env_value", "flag", "flag_value"), FROM_ENV)
def test_precedence_is_flag_then_environment_then_file_then_default(
    monkeypatch: pytest.MonkeyPatch, config_file: Any,
    env: str, text: str, attr: str, env_value: Any, flag: str, flag_value: Any,
) -> None:
    line, file_value = FROM_FILE[attr]
    path = config_file(line)
    option = "--" + attr.replace("_", "-")
    assert configured_by(parse())[attr] == DEFAULT_CONFIGURATION[attr]
    assert configured_by(parse("--config", path))[attr] == file_value
    assert configured_by(parse("--config", path, option, flag))[attr] == flag_value
    monkeypatch.setenv(env, text)
    assert configured_by(parse("--config", path))[attr] == env_value
    assert configured_by(parse("--config", path, option, flag))[attr] == flag_value
    assert configured_by(parse(option, flag, "--config", path))[attr] == flag_value


def test_runcast_config_names_the_file(monkeypatch: pytest.MonkeyPatch, config_file: Any) -> None:
    monkeypatch.setenv("RUNCAST_CONFIG", str(config_file("port = 8123")))
    assert configured_by(parse())["port"] == 8123
    assert configured_by(parse("--port", "9000"))["port"] == 9000


def test_a_config_flag_beats_runcast_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_file: Any
) -> None:
    monkeypatch.setenv("RUNCAST_CONFIG", str(tmp_path / "missing.toml"))
    assert configured_by(parse("--config", config_file("port = 8123")))["port"] == 8123


# -- refusals: one line on stderr, exit status 2 -----------------------------------------------------


def refusal(*argv: str | Path) -> str:
    """The line `runcast serve ARGV` is refused with, as it shows it; everything `runcast serve`
    does before it starts the server, and nothing after, so that a wrong guess here is a failure
    and never a server (test_a_refusal_is_one_line_and_exit_status_2 runs `main` itself)."""
    with pytest.raises(Refusal) as refused:
        ctx = parse(*argv)
        served_app(ctx, configuration_of(ctx))
    line = f"runcast: {refused.value.format_message()}"
    assert "\n" not in line
    return line


def test_a_refusal_is_one_line_and_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--port", "abc"], ["--store", "memory", "--retention", "1"]):
        with pytest.raises(SystemExit) as exited:
            main(["serve", *argv])
        assert exited.value.code == 2
        assert capsys.readouterr().err.splitlines() == [refusal(*argv)]


BAD_VALUES = [
    ("port", "abc"),
    ("port", "-1"),
    ("port", "65536"),
    ("port", "80.5"),
    ("demo-step-delay", "-0.1"),
    ("demo-step-delay", "soon"),
    ("demo-step-delay", "nan"),
    ("demo-steps", "0"),
    ("demo-steps", "two"),
    ("demo-progress", "-1"),
    ("shutdown-grace", "-1"),
    ("shutdown-grace", "nan"),
    ("max-message-size", "0"),
    ("max-message-size", "1k"),
    ("feed-capacity", "0"),
    ("feed-capacity", "-5"),
    ("graph-max-iterations", "0"),
    ("graph-max-iterations", "1e3"),
    ("max-run-events", "2"),
    ("max-run-events", "-1"),
    ("max-run-events", "many"),
    ("allowed-origins", "null"),
    ("allowed-origins", "localhost:3000"),
    ("allowed-origins", "http://app.example/"),
    ("allowed-origins", "http://app.example,"),
    ("store", "redis:localhost"),
    ("store", "sqlite:"),
    ("store", "postgres:db"),
    ("store", ""),
    ("lease-ttl", "0"),
    ("lease-renew", "inf"),
    ("retention", "-3"),
    ("log-level", "LOUD"),
    ("app", "mymod"),
    ("app", "my-mod:app"),
    ("app", ""),
]


@pytest.mark.parametrize(("option", "value"), BAD_VALUES)
def test_a_bad_flag_value_is_refused_naming_the_option(option: str, value: str) -> None:
    line = refusal(f"--{option}", value)
    assert line.startswith(f"runcast: --{option} must be ")
    assert line.endswith(f", got {value!r}")


@pytest.mark.parametrize(("option", "value"), BAD_VALUES)
def test_a_bad_environment_value_is_refused_naming_the_option_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, option: str, value: str
) -> None:
    monkeypatch.setenv(env_name(option), value)
    line = refusal()
    assert line.startswith(f"runcast: --{option} (from {env_name(option)}) must be ")
    assert line.endswith(f", got {value!r}")


def test_the_refusals_say_what_is_accepted() -> None:
    assert refusal("--port", "abc") == "runcast: --port must be a port (0 to 65535), got 'abc'"
    assert refusal("--log-level", "LOUD") == (
        "runcast: --log-level must be DEBUG, INFO, WARNING or ERROR, got 'LOUD'"
    )
    assert refusal("--store", "postgres:db") == (
        "runcast: --store must be 'memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB', got 'postgres:db'"
    )
    assert refusal("--app", "mymod") == (
        "runcast: --app must be module:attribute (as my_workflows:app), got 'mymod'"
    )


def test_options_fine_alone_but_not_together_are_refused() -> None:
    assert refusal("--store", "memory", "--retention", "5") == (
        "runcast: --retention applies to a redis:// store only (the others keep histories for ever)"
    )
    line = refusal("--lease-ttl", "2", "--lease-renew", "3")
    assert line.startswith("runcast: --node-id, --lease-ttl, --lease-renew: ")


@pytest.mark.parametrize("demo", ["--demo-step-delay", "--demo-steps", "--demo-progress"])
def test_demo_options_are_refused_with_app(
    monkeypatch: pytest.MonkeyPatch, config_file: Any, demo: str
) -> None:
    """Wherever either comes from; before the app is looked for (mymod exists nowhere)."""
    assert refusal("--app", "mymod:app", demo, "1") == (
        f"runcast: {demo} sizes the demo, which --app replaces: give one or the other"
    )
    monkeypatch.setenv(env_name(demo[2:]), "1")
    assert refusal("--app", "mymod:app") == (
        f"runcast: {demo} (from {env_name(demo[2:])}) sizes the demo, which --app replaces:"
        " give one or the other"
    )
    monkeypatch.delenv(env_name(demo[2:]))
    path = config_file('app = "mymod:app"', f"{demo[2:]} = 1")
    assert refusal("--config", path) == (
        f"runcast: {demo[2:]} in {path} sizes the demo, which app in {path} replaces:"
        " give one or the other"
    )


def test_an_app_that_cannot_be_loaded_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From the current directory (tests/web/test_app_loader.py has every way loading fails)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "half_written_app.py").write_text("x = 1\n")
    assert refusal("--app", "no_such_app_module:app") == (
        f"runcast: --app: no module named 'no_such_app_module' (looked in {tmp_path}, then on"
        " Python's path)"
    )
    monkeypatch.setenv("RUNCAST_APP", "half_written_app:app")
    assert refusal() == (
        "runcast: --app (from RUNCAST_APP): module 'half_written_app' has no attribute 'app'"
    )
    del sys.modules["half_written_app"]


BAD_FILES = [
    ("prot = 1", "{path}: unknown key 'prot' (did you mean 'port'?)"),
    ('colour = "blue"', "{path}: unknown key 'colour' (the keys are: host, port, store, "),
    ('config = "other.toml"', "{path}: unknown key 'config' (the keys are: "),
    ("[serve]\nport = 1", "{path}: unknown table [serve]: the options are top-level keys"),
    ("demo-steps = 1\ndemo_steps = 2", "{path}: 'demo-steps' and 'demo_steps' are the same option"),
    ('port = "7777"', "port in {path} must be an integer, got a string ('7777')"),
    ("port = true", "port in {path} must be an integer, got a boolean (True)"),
    ("port = 80.5", "port in {path} must be an integer, got a float (80.5)"),
    ('demo-step-delay = "fast"', "demo-step-delay in {path} must be a number, got a string ('fast')"),
    ("store = 1", "store in {path} must be a string, got an integer (1)"),
    ("host = [\"a\"]", "host in {path} must be a string, got an array (['a'])"),
    ("allowed-origins = [1]", "allowed-origins in {path} must be a string or an array of strings, got an array ([1])"),
    ("retention = 1979-05-27", "retention in {path} must be a number, got a date (datetime.date(1979, 5, 27))"),
    ("node-id = {name = 'a'}", "node-id in {path} must be a string, got a table ({'name': 'a'})"),
    ("port = 70000", "port in {path} must be a port (0 to 65535), got 70000"),
    ("demo_steps = 0", "demo_steps in {path} must be a positive integer, got 0"),
    ("max-run-events = 2", "max-run-events in {path} must be an integer of at least 3, got 2"),
    ('store = "postgres:x"', "store in {path} must be 'memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB', got 'postgres:x'"),
    ("lease-ttl = nan", "lease-ttl in {path} must be a positive number, got nan"),
    ("shutdown-grace = inf", "shutdown-grace in {path} must be a non-negative number, got inf"),
    ('log-level = "loud"', "log-level in {path} must be DEBUG, INFO, WARNING or ERROR, got 'loud'"),
    ('app = "mymod"', "app in {path} must be module:attribute (as my_workflows:app), got 'mymod'"),
    ("port = ", "the config file {path} is not valid TOML: Invalid value (at line 1, column 8)"),
    ('port = 1\nport = 2', "the config file {path} is not valid TOML: Cannot overwrite a value (at line 2, column 9)"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_a_bad_config_file_is_refused_naming_the_file_and_the_key(
    config_file: Any, text: str, expected: str
) -> None:
    path = config_file(text)
    assert refusal("--config", path).startswith("runcast: " + expected.replace("{path}", str(path)))


def test_a_config_file_that_cannot_be_read_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.toml"
    assert refusal("--config", missing) == (
        f"runcast: cannot read the config file {missing}: No such file or directory"
    )
    assert refusal("--config", tmp_path) == (
        f"runcast: cannot read the config file {tmp_path}: Is a directory"
    )
    latin = tmp_path / "latin.toml"
    latin.write_bytes('node-id = "café"\n'.encode("latin-1"))
    assert refusal("--config", latin) == f"runcast: the config file {latin} is not UTF-8 text"
    monkeypatch.setenv("RUNCAST_CONFIG", str(missing))
    assert refusal() == f"runcast: cannot read the config file {missing}: No such file or directory"


def test_a_flag_does_not_save_a_bad_config_file(config_file: Any) -> None:
    """The file is read whole: a bad value in it is refused even where a flag would win."""
    path = config_file("port = 70000")
    assert refusal("--config", path, "--port", "8000") == (
        f"runcast: port in {path} must be a port (0 to 65535), got 70000"
    )


def test_runcast_alone_shows_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Usage:" in err and "serve" in err


# -- real processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StartRuncast(Protocol):
    def __call__(
        self, *args: str, port: int | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], str]: ...


@pytest.fixture
def runcast_serve(tmp_path: Path) -> Iterator[StartRuncast]:
    """`runcast_serve(*args, port=None, cwd=None, env=None)` -> (process, base_url): `runcast
    serve ARGS` in `cwd` (the test's tmp dir) with `env` added to a RUNCAST_-free environment,
    answering /health on `port` (if None: a free one, given as --port). Every process is killed
    if a test leaves it."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        *args: str, port: int | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], str]:
        if port is None:
            port = free_port()
            args = ("--port", str(port), *args)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")}
        process = subprocess.Popen(
            [str(RUNCAST), "serve", *args],
            cwd=cwd or tmp_path,
            env={**environment, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                    return process, base_url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "runcast serve did not answer /health"
            time.sleep(0.05)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture
def serve_process(runcast_serve: StartRuncast, tmp_path: Path) -> Any:
    """`start(*extra_args)` -> (process, base_url): the demo on the test's own SQLite file."""
    return lambda *extra: runcast_serve("--store", f"sqlite:{tmp_path / 'cli.db'}", *extra)


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)  # a hang guard, not a timing assertion
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("runcast serve did not exit within 15 s of SIGTERM")
    assert process.stderr is not None
    return code, process.stderr.read().decode()


def run_workflow(base_url: str, workflow_id: str, message: str = "") -> list[dict[str, Any]]:
    """Start a run over /workflows/ws and read its events through the terminal one."""
    with connect(base_url.replace("http://", "ws://") + "/workflows/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["event"] == "connected"
        ws.send(json.dumps({"action": "start-workflow", "workflow_id": workflow_id, "message": message}))
        frames = [json.loads(ws.recv(timeout=10))]
        while frames[-1]["event"] not in TERMINAL and frames[-1]["event"] != "error":
            frames.append(json.loads(ws.recv(timeout=10)))
    return frames


def test_serve_exits_cleanly_on_sigterm(serve_process: Any) -> None:
    process, base_url = serve_process()
    assert httpx.get(base_url + "/health").json()["status"] == "healthy"
    code, stderr = stop(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_sigterm_cancels_a_running_run_durably(serve_process: Any) -> None:
    """Structured shutdown through the real CLI: the run still running at SIGTERM is cancelled,
    its follower gets WorkflowCancelled + WorkflowCompleted before the socket closes (1001), and a
    new server on the same store replays the run as CANCELLED."""
    process, base_url = serve_process("--demo-step-delay", "30")
    ws_url = base_url.replace("http://", "ws://") + "/workflows/ws"
    with connect(ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["event"] == "connected"
        ws.send(json.dumps({"action": "start-workflow", "workflow_id": "content-creation-workflow"}))
        started = json.loads(ws.recv(timeout=10))
        assert started["event"] == "WorkflowStarted"
        assert json.loads(ws.recv(timeout=10))["event"] == "StepStarted"
        code, stderr = stop(process)
        frames = []
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=10)))
        except Exception as closed:  # the server closed the socket
            close_code = getattr(getattr(closed, "rcvd", None), "code", None)
    assert code == 0, stderr
    assert [f["event"] for f in frames] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert [f["event_index"] for f in frames] == [2, 3]
    assert close_code == 1001

    process, base_url = serve_process()
    record = httpx.get(f"{base_url}/runs/{started['run_id']}").json()
    assert record["status"] == "CANCELLED" and record["event_count"] == 4
    code, stderr = stop(process)
    assert code == 0, stderr


USER_MODULE = """\
from actors import StepContext, Workflow, WorkflowCatalog
from actors.workflows.tools import ToolRegistry
from web.app_loader import App


async def greet(ctx: StepContext) -> str:
    await ctx.progress("looking up", {"who": ctx.input})
    return f"hello, {ctx.input}"


def sign(ctx: StepContext) -> str:
    return ctx.previous_content + " -- mymod"


def double(state, key="n"):
    \"\"\"Double a number of the state.\"\"\"
    return {key: state[key] * 2}


catalog = WorkflowCatalog()
catalog.add(Workflow("greeting", "Greeting", [greet, sign], description="Says hello"))
tools = ToolRegistry()
tools.add(double)
app = App(catalog, tools)


def make_app():
    made = WorkflowCatalog()
    made.add(Workflow("made", "Made by a factory", [greet, sign]))
    return App(catalog=made)
"""


def test_serve_app_serves_the_users_workflow_and_tools_only(
    runcast_serve: StartRuncast, tmp_path: Path
) -> None:
    (tmp_path / "mymod.py").write_text(USER_MODULE)
    process, base_url = runcast_serve("--app", "mymod:app", "--store", "memory")
    frames = run_workflow(base_url, "greeting", "Ada")
    assert [f["event"] for f in frames] == [
        "WorkflowStarted", "StepStarted", "StepProgress", "StepOutput", "StepCompleted",
        "StepStarted", "StepOutput", "StepCompleted", "WorkflowCompleted",
    ]
    assert [f["event_index"] for f in frames] == list(range(9))
    assert frames[2]["content"] == "looking up" and frames[2]["data"] == {"who": "Ada"}
    assert frames[-1]["content"] == "hello, Ada -- mymod"
    assert httpx.get(base_url + "/workflows").json() == [
        {"id": "greeting", "name": "Greeting", "description": "Says hello"}
    ]
    assert httpx.get(base_url + "/graph/tools").json()["tools"] == [
        {"name": "double", "description": "Double a number of the state.", "params": ["key"]}
    ]
    refused = run_workflow(base_url, "content-creation-workflow")
    assert refused == [{"event": "error", "error": "Workflow content-creation-workflow not found"}]
    code, stderr = stop(process)
    assert code == 0, stderr


def test_serve_app_calls_a_factory_named_by_runcast_app(runcast_serve: StartRuncast, tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text(USER_MODULE)
    process, base_url = runcast_serve("--store", "memory", env={"RUNCAST_APP": "mymod:make_app"})
    assert [w["id"] for w in httpx.get(base_url + "/workflows").json()] == ["made"]
    assert httpx.get(base_url + "/graph/tools").json()["tools"] == []
    frames = run_workflow(base_url, "made", "x")
    assert frames[-1]["event"] == "WorkflowCompleted"
    assert frames[-1]["content"] == "hello, x -- mymod"
    code, stderr = stop(process)
    assert code == 0, stderr


def test_serve_app_of_graph_tools_alone_runs_graphs_over_them(
    runcast_serve: StartRuncast, tmp_path: Path
) -> None:
    (tmp_path / "graph_tools.py").write_text(
        "from actors.workflows.tools import ToolRegistry\n"
        "registry = ToolRegistry()\n\n\n"
        "@registry.tool\n"
        "def add(state, amount=1):\n"
        '    """Add to the total."""\n'
        '    return {"total": state.get("total", 0) + amount}\n'
    )
    process, base_url = runcast_serve("--app", "graph_tools:registry", "--store", "memory")
    assert httpx.get(base_url + "/workflows").json() == []
    assert httpx.get(base_url + "/graph/tools").json()["tools"] == [
        {"name": "add", "description": "Add to the total.", "params": ["amount"]}
    ]
    definition = {
        "name": "adder",
        "nodes": {"first": {"function": "add", "params": {"amount": 2}},
                  "second": {"function": "add", "params": {"amount": 40}}},
        "edges": {"first": "second"},
    }
    created = httpx.post(base_url + "/graph/create", json=definition)
    assert created.status_code == 200, created.text
    ran = httpx.post(
        base_url + "/graph/run", json={"graph_id": created.json()["graph_id"], "initial_state": {}}, timeout=10
    ).json()
    assert ran["status"] == "completed" and ran["final_state"]["total"] == 42
    demo_graph = dict(definition, nodes={"x": {"function": "extract_functions", "params": {}}}, edges={})
    assert httpx.post(base_url + "/graph/create", json=demo_graph).status_code == 422  # no demo tools
    code, stderr = stop(process)
    assert code == 0, stderr


def test_serve_refuses_an_app_it_cannot_load_in_one_line(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")}
    (tmp_path / "broken.py").write_text("import not_installed_anywhere\n")
    done = subprocess.run(
        [str(RUNCAST), "serve", "--app", "broken:app", "--port", str(free_port())],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "runcast: --app: importing broken raised ModuleNotFoundError: No module named"
        f" 'not_installed_anywhere' (at {tmp_path / 'broken.py'}:1)"
    ]
    assert not (tmp_path / "runcast.db").exists()  # nothing started


def test_serve_config_answers_on_the_port_of_the_file_flags_and_variables_winning(
    runcast_serve: StartRuncast, tmp_path: Path
) -> None:
    """The file sets the port, the store and the demo's size; RUNCAST_DEMO_STEPS and
    --demo-progress override two of them: a demo run has 2 + 2 x (3 + 0) events."""
    port = free_port()
    config = tmp_path / "runcast.toml"
    config.write_text(
        f"port = {port}\n"
        'store = "sqlite:from-file.db"\n'
        "demo-step-delay = 0\n"
        "demo_steps = 5\n"
        "demo-progress = 3\n"
    )
    process, base_url = runcast_serve(
        "--config", "runcast.toml", "--demo-progress", "0", port=port, env={"RUNCAST_DEMO_STEPS": "2"}
    )
    frames = run_workflow(base_url, "content-creation-workflow")
    assert len(frames) == 2 + 2 * 3
    assert frames[-1]["event"] == "WorkflowCompleted"
    code, stderr = stop(process)
    assert code == 0, stderr
    assert (tmp_path / "from-file.db").is_file()


def readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"the README should have one python block with {marker!r}"
    return found[0]


def test_the_readme_example_app_is_the_example_file_and_serves(runcast_serve: StartRuncast) -> None:
    """README "Serving your own workflows": its module is examples/my_workflows.py, served from
    its directory as the README says."""
    example = REPO / "examples" / "my_workflows.py"
    assert readme_block("from web.app_loader import App") == example.read_text()
    process, base_url = runcast_serve(
        "--app", "my_workflows:app", "--store", "memory", cwd=example.parent
    )
    frames = run_workflow(base_url, "note", "trio")
    assert frames[-1]["event"] == "WorkflowCompleted"
    assert frames[-1]["content"] == "A NOTE ABOUT TRIO"
    tools = httpx.get(base_url + "/graph/tools").json()["tools"]
    assert tools == [{"name": "word_count", "description": "Count the words of `text`.", "params": ["minimum"]}]
    code, stderr = stop(process)
    assert code == 0, stderr


def test_the_readme_config_file_is_read_as_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert len(blocks) == 1
    path = tmp_path / "runcast.toml"
    path.write_text(blocks[0])
    configuration = configured_by(parse("--config", path))
    assert configuration == {
        **DEFAULT_CONFIGURATION, "port": 8000, "store": "sqlite:/var/lib/runcast/runs.db",
        "token": "s3cret", "allowed_origins": ("https://app.example", "http://localhost:3000"),
        "shutdown_grace": 30.0, "log_level": "WARNING", "demo_step_delay": 0.5,
    }
    monkeypatch.setenv("RUNCAST_PORT", "9000")
    assert configured_by(parse("--config", path))["port"] == 9000
    assert configured_by(parse("--config", path, "--port", "9001"))["port"] == 9001
