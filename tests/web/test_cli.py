"""The `runcast` command of web/cli.py: options, environment variables, refusals, and a real
`runcast serve` process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from websockets.sync.client import connect

from web.cli import OPTIONS, build_parser, demo_from, env_name, main, settings_from
from web.demo import Demo
from web.server import Settings

RUNCAST = Path(sys.executable).parent / "runcast"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RUNCAST_* variable from the surrounding shell leaks into a test."""
    for option, *_ in OPTIONS:
        monkeypatch.delenv(env_name(option), raising=False)


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["serve", *argv])


# -- defaults, environment, flags ----------------------------------------------------------------


def test_defaults() -> None:
    args = parse()
    settings = settings_from(args)
    assert settings == Settings(
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
    assert demo_from(args) == Demo(step_delay=1.25, steps=8, progress=2)
    assert args.log_level == "INFO"


def test_env_names() -> None:
    assert env_name("port") == "RUNCAST_PORT"
    assert env_name("demo-step-delay") == "RUNCAST_DEMO_STEP_DELAY"
    assert {env_name(o) for o, *_ in OPTIONS} >= {
        "RUNCAST_HOST", "RUNCAST_PORT", "RUNCAST_STORE", "RUNCAST_DEMO_STEP_DELAY",
        "RUNCAST_DEMO_STEPS", "RUNCAST_DEMO_PROGRESS", "RUNCAST_TOKEN", "RUNCAST_SHUTDOWN_GRACE",
        "RUNCAST_MAX_MESSAGE_SIZE", "RUNCAST_FEED_CAPACITY", "RUNCAST_LOG_LEVEL",
        "RUNCAST_GRAPH_MAX_ITERATIONS", "RUNCAST_MAX_RUN_EVENTS", "RUNCAST_ALLOWED_ORIGINS",
    }


def configured(settings: Settings, demo: Demo) -> dict[str, Any]:
    """What `runcast serve` runs with by option name: the server's settings, and the demo's as
    `demo_<field>`."""
    demo_fields = {f"demo_{name}": value for name, value in attrs.asdict(demo).items()}
    return {**attrs.asdict(settings), **demo_fields}


def configured_by(args: Any) -> dict[str, Any]:
    return configured(settings_from(args), demo_from(args))


DEFAULT_CONFIGURATION = configured(Settings(), Demo())

# (env var, its text, Settings/Demo/args attribute, expected value, a flag value that differs)
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
]


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


def test_log_level_from_environment_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_LOG_LEVEL", "DEBUG")
    assert parse().log_level == "DEBUG"
    assert parse("--log-level", "WARNING").log_level == "WARNING"


def test_a_flag_beats_a_bad_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_PORT", "not-a-port")
    assert settings_from(parse("--port", "8001")).port == 8001


def test_an_empty_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_TOKEN", "")
    assert settings_from(parse()).token is None
    assert settings_from(parse("--token", "")).token is None


def test_an_empty_allowed_origins_allows_no_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCAST_ALLOWED_ORIGINS", "")
    assert settings_from(parse()).allowed_origins == ()
    assert settings_from(parse("--allowed-origins", "")).allowed_origins == ()


# -- refusals ------------------------------------------------------------------------------------

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
]


@pytest.mark.parametrize(("option", "value"), BAD_VALUES)
def test_a_bad_flag_value_is_refused_naming_the_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(f"--{option}", value)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--{option}" in err and repr(value) in err


@pytest.mark.parametrize(("option", "value"), BAD_VALUES)
def test_a_bad_environment_value_is_refused_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    monkeypatch.setenv(env_name(option), value)
    with pytest.raises(SystemExit) as exited:
        parse()
    assert exited.value.code == 2
    assert f"--{option}" in capsys.readouterr().err


def test_a_bad_log_level_is_refused_before_anything_starts() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--log-level", "LOUD"])
    assert isinstance(exited.value.code, str)
    assert "--log-level" in exited.value.code and "LOUD" in exited.value.code


def test_serve_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])
    assert exited.value.code == 2
    assert "command" in capsys.readouterr().err


# -- a real process --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Any]:
    """`start(*extra_args)` -> (process, base_url); every process is killed if a test leaves it."""
    processes: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")}

    def start(*extra: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        process = subprocess.Popen(
            [str(RUNCAST), "serve", "--port", str(port), "--store", f"sqlite:{tmp_path / 'cli.db'}", *extra],
            env=env,
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
