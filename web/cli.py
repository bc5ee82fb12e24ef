"""The `runcast` command, a click group: `runcast serve [options]` serves the demo (`web.demo`),
or with `--app module:attribute` the workflows and graph tools of the user's module
(`web.app_loader`), and nothing of the demo.

Each option of `serve` takes its value from, first to last: its flag, its environment variable
(`--port` <- `RUNCAST_PORT`; set to an empty text, it counts), the TOML file of `--config`
(`web.config_file`), its default. A bad value, wherever it came from, is refused before
anything starts with one line naming the option and where its value came from (`runcast:
--port (from RUNCAST_PORT) must be a port (0 to 65535), got 'x'`), exit status 2; a server
that cannot start (its store is in use, its port is taken) exits 1 with one line.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any

import attrs
import click
import trio
from click.core import ParameterSource

from actors.run import SMALLEST_MAX_RUN_EVENTS
from actors.store import StorageFailed, StoreInUse, parse_store_url
from actors.supervisor import root_cause
from client.cli import runs
from web.app_loader import App, AppNotLoaded, AppSpec, load_app, parse_app_spec
from web.config_file import INTEGER, NUMBER, STRING, STRINGS, ConfigError, ConfigFile, TomlType, read_config
from web.demo import Demo, demo_tools
from web.origins import parse_allowed_origins
from web.server import Settings, serve
from web.transport import BindFailed
from web.tuning import tune_interpreter

DEFAULTS = Settings()
DEMO_DEFAULTS = Demo()
LOG_LEVELS = logging.getLevelNamesMapping()
CONFIG_FILE = "runcast.config"  # the key of the ConfigFile read, in the serve context's meta


@attrs.frozen
class Kind:
    """What an option takes: `parse` makes its value of a flag's or an environment variable's
    text, or of a config file's value (one of `toml`), and raises ValueError for anything that is
    not `described`."""

    metavar: str
    described: str  # what a value must be: "a port (0 to 65535)"
    parse: Callable[[Any], Any]
    toml: TomlType


def _integer(value: str | int) -> int:
    return value if isinstance(value, int) else int(value)  # int("80.5"), int("1e3"): ValueError


def _number(value: str | float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _at_least(smallest: int) -> Callable[[str | int], int]:
    def parse(value: str | int) -> int:
        integer = _integer(value)
        if integer < smallest:
            raise ValueError(value)
        return integer

    return parse


def _port(value: str | int) -> int:
    port = _integer(value)
    if not 0 <= port <= 65535:
        raise ValueError(value)
    return port


def _non_negative_number(value: str | float) -> float:
    number = _number(value)
    if number < 0:
        raise ValueError(value)
    return number


def _positive_number(value: str | float) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError(value)
    return number


def _store_url(value: str) -> str:
    parse_store_url(value)
    return value


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(value)
    return value.upper()


def _text(value: str) -> str:
    return value


TEXT = Kind("TEXT", "a text", _text, STRING)
PORT = Kind("PORT", "a port (0 to 65535)", _port, INTEGER)
POSITIVE_INTEGER = Kind("INTEGER", "a positive integer", _at_least(1), INTEGER)
NON_NEGATIVE_INTEGER = Kind("INTEGER", "a non-negative integer", _at_least(0), INTEGER)
SECONDS = Kind("SECONDS", "a non-negative number", _non_negative_number, NUMBER)
POSITIVE_SECONDS = Kind("SECONDS", "a positive number", _positive_number, NUMBER)
RUN_EVENT_LIMIT = Kind(  # a run's own events: its start, and up to two at its end
    "INTEGER", f"an integer of at least {SMALLEST_MAX_RUN_EVENTS}",
    _at_least(SMALLEST_MAX_RUN_EVENTS), INTEGER,
)
STORE = Kind("STORE", "'memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB'", _store_url, STRING)
ORIGINS = Kind(
    "ORIGINS", "origins (comma-separated http(s)://host[:port]), or *", parse_allowed_origins, STRINGS
)
LOG_LEVEL = Kind("LEVEL", "DEBUG, INFO, WARNING or ERROR", _log_level, STRING)
APP = Kind("MODULE:ATTRIBUTE", "module:attribute (as my_workflows:app)", parse_app_spec, STRING)


@attrs.frozen
class ServeOption:
    name: str  # as the flag says it, without its dashes: "demo-step-delay"
    kind: Kind
    default: Any
    help: str
    shown_default: str | None = None  # what --help says of a default of None

    @property
    def param(self) -> str:
        return self.name.replace("-", "_")


OPTIONS = [
    ServeOption("host", TEXT, DEFAULTS.host, "address to bind (loopback by default)"),
    ServeOption("port", PORT, DEFAULTS.port, "port to bind"),
    ServeOption("store", STORE, DEFAULTS.store,
                "'sqlite:PATH' (durable), 'redis://HOST:PORT/DB' or 'memory'"),
    ServeOption("demo-step-delay", SECONDS, DEMO_DEFAULTS.step_delay,
                "seconds each step of the demo workflow takes (0 for benchmarks)"),
    ServeOption("demo-steps", POSITIVE_INTEGER, DEMO_DEFAULTS.steps, "steps in the demo workflow"),
    ServeOption("demo-progress", NON_NEGATIVE_INTEGER, DEMO_DEFAULTS.progress,
                "progress events per demo step"),
    ServeOption("token", TEXT, None, "require this token (authenticate action / Bearer header)",
                "none"),
    ServeOption("shutdown-grace", SECONDS, DEFAULTS.shutdown_grace,
                "seconds running runs get to finish at shutdown before they are cancelled"),
    ServeOption("max-message-size", POSITIVE_INTEGER, DEFAULTS.max_message_size,
                "largest WebSocket message accepted, in bytes (larger: close code 1009)"),
    ServeOption("feed-capacity", POSITIVE_INTEGER, DEFAULTS.feed_capacity,
                "events buffered per live subscriber before it falls back to the history"),
    ServeOption("graph-max-iterations", POSITIVE_INTEGER, DEFAULTS.graph_max_iterations,
                "node passes a graph run may make in all, and the largest max_iterations it may"
                " ask for"),
    ServeOption("max-run-events", RUN_EVENT_LIMIT, DEFAULTS.max_run_events,
                "events a run may hold; a run body that would emit more ends the run with an"
                " error"),
    ServeOption("allowed-origins", ORIGINS, DEFAULTS.allowed_origins,
                "origins of browser pages that may use the server, comma-separated, or * for"
                " any", "http(s) on 127.0.0.1, localhost and [::1] at the server's port"),
    ServeOption("node-id", TEXT, None, "this node's name among the nodes sharing a Redis store,"
                " in logs and ownership", "host name and port"),
    ServeOption("lease-ttl", POSITIVE_SECONDS, DEFAULTS.lease_ttl,
                "seconds a node's lease in Redis lasts unless renewed: a node that dies has its"
                " runs closed by the others this long after"),
    ServeOption("lease-renew", POSITIVE_SECONDS, DEFAULTS.lease_renew,
                "seconds between renewals of the lease, and between sweeps for runs of dead"
                " nodes"),
    ServeOption("retention", POSITIVE_SECONDS, DEFAULTS.retention,
                "seconds a finished run stays replayable in a Redis store", "for ever"),
    ServeOption("log-level", LOG_LEVEL, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    ServeOption("app", APP, None, "serve the workflows and graph tools of this module's attribute"
                " (a WorkflowCatalog, a ToolRegistry, an object with `catalog` and/or `tools`,"
                " or a factory of one) instead of the demo", "the demo"),
]
BY_PARAM = {option.param: option for option in OPTIONS}
DEMO_OPTIONS = ("demo_step_delay", "demo_steps", "demo_progress")


def env_name(option: str) -> str:
    return "RUNCAST_" + option.upper().replace("-", "_")


class Refusal(click.UsageError):
    """A value `runcast` will not run with: one line on stderr, `runcast: <what was wrong>`, and
    exit status 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"runcast: {self.format_message()}", file=file, err=True)


def where(ctx: click.Context, param: str) -> str:
    """The option `param`, and where its value came from: `--port`, `--port (from
    RUNCAST_PORT)`, or `port in /etc/runcast.toml`."""
    option = BY_PARAM[param]
    source = ctx.get_parameter_source(param)
    if source is ParameterSource.ENVIRONMENT:
        return f"--{option.name} (from {env_name(option.name)})"
    config = ctx.meta.get(CONFIG_FILE)
    if source is ParameterSource.DEFAULT_MAP and isinstance(config, ConfigFile):
        return config.where(param)
    return f"--{option.name}"


def _wrong(what: str, kind: Kind, value: object) -> Refusal:
    return Refusal(f"{what} must be {kind.described}, got {value!r}")


def _converter(kind: Kind) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """The option's callback: its value of what click read, wherever from (None: not given)."""

    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return kind.parse(value)
        except ValueError:
            raise _wrong(where(ctx, param.name or ""), kind, value) from None

    return convert


class _Option(click.Option):
    """An option whose environment variable counts whenever it is set, also to an empty text
    (`RUNCAST_ALLOWED_ORIGINS=` allows no origin, as `--allowed-origins ''` does)."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        return os.environ.get(self.envvar) if isinstance(self.envvar, str) else None


def _use_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Read the config file first (the option is eager), so that its values are the defaults of
    the options read after it. Every value of the file is checked, also one that a flag or an
    environment variable overrides: a file is refused or used whole."""
    if not value:
        return None
    toml_types = {option.param: option.kind.toml for option in OPTIONS}
    try:
        config = read_config(Path(value), toml_types)
    except ConfigError as wrong:
        raise Refusal(str(wrong)) from None
    for name, given in config.values.items():
        kind = BY_PARAM[name].kind
        try:
            kind.parse(given)
        except ValueError:
            raise _wrong(config.where(name), kind, given) from None
    ctx.default_map = {**(ctx.default_map or {}), **config.values}
    ctx.meta[CONFIG_FILE] = config
    return value


def _click_option(option: ServeOption) -> click.Option:
    return _Option(
        [f"--{option.name}"],
        type=click.UNPROCESSED,
        callback=_converter(option.kind),
        metavar=option.kind.metavar,
        default=option.default,
        envvar=env_name(option.name),
        show_envvar=True,
        show_default=True if option.shown_default is None else option.shown_default,
        help=option.help,
    )


CONFIG_OPTION = _Option(
    ["--config"],
    envvar=env_name("config"),
    show_envvar=True,
    is_eager=True,
    expose_value=False,
    callback=_use_config,
    metavar="PATH",
    help="a TOML file of these options (`port = 7777`, `demo-step-delay = 0`); a flag or an"
    " environment variable wins over it",
)


@attrs.frozen
class Configuration:
    """What `runcast serve` runs with: its settings, and what it serves, the demo or the app of
    `--app`."""

    settings: Settings
    log_level: str
    served: Demo | AppSpec


def settings_from(params: Mapping[str, Any]) -> Settings:
    return Settings(
        host=params["host"],
        port=params["port"],
        store=params["store"],
        token=params["token"] or None,
        shutdown_grace=params["shutdown_grace"],
        max_message_size=params["max_message_size"],
        feed_capacity=params["feed_capacity"],
        graph_max_iterations=params["graph_max_iterations"],
        max_run_events=params["max_run_events"],
        allowed_origins=params["allowed_origins"],
        node_id=params["node_id"] or None,
        lease_ttl=params["lease_ttl"],
        lease_renew=params["lease_renew"],
        retention=params["retention"],
    )


def check_settings(settings: Settings) -> str | None:
    """What is wrong with settings that are each fine on their own, or None."""
    if settings.retention is not None and parse_store_url(settings.store)[0] != "redis":
        return "--retention applies to a redis:// store only (the others keep histories for ever)"
    try:
        settings.node()
    except ValueError as wrong:
        return f"--node-id, --lease-ttl, --lease-renew: {wrong}"
    return None


def demo_from(params: Mapping[str, Any]) -> Demo:
    return Demo(
        step_delay=params["demo_step_delay"], steps=params["demo_steps"], progress=params["demo_progress"]
    )


def configuration_of(ctx: click.Context) -> Configuration:
    """The configuration of a parsed `runcast serve` context; Refusal for options that are each
    fine but not together."""
    settings = settings_from(ctx.params)
    wrong = check_settings(settings)
    if wrong is not None:
        raise Refusal(wrong)
    app: AppSpec | None = ctx.params["app"]
    if app is None:
        return Configuration(settings, ctx.params["log_level"], demo_from(ctx.params))
    for param in DEMO_OPTIONS:
        if ctx.get_parameter_source(param) is not ParameterSource.DEFAULT:
            raise Refusal(
                f"{where(ctx, param)} sizes the demo, which {where(ctx, 'app')} replaces:"
                " give one or the other"
            )
    return Configuration(settings, ctx.params["log_level"], app)


def served_app(ctx: click.Context, configuration: Configuration) -> App:
    """The workflows and graph tools to serve: the demo's, or those of `--app`, imported with
    the current directory first on Python's path."""
    if isinstance(configuration.served, Demo):
        return App(catalog=configuration.served.catalog(), tools=demo_tools())
    try:
        return load_app(configuration.served, os.getcwd())
    except AppNotLoaded as failed:
        raise Refusal(f"{where(ctx, 'app')}: {failed}") from None


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


def _serve(**_: Any) -> None:
    ctx = click.get_current_context()
    configuration = configuration_of(ctx)
    app = served_app(ctx, configuration)
    logging.basicConfig(
        level=LOG_LEVELS[configuration.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tune_interpreter()
    try:
        trio.run(
            partial(
                serve, configuration.settings, _until_signalled, catalog=app.catalog, tools=app.tools
            )
        )
    except* (StoreInUse, BindFailed, StorageFailed) as refused:
        sys.exit(f"runcast: {root_cause(refused)}")


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

serve_command = click.Command(
    "serve",
    callback=_serve,
    params=[CONFIG_OPTION, *(_click_option(option) for option in OPTIONS)],
    context_settings=CONTEXT,
    help="Run the server: workflow runs over WebSocket and HTTP, until SIGTERM or SIGINT. It"
    " serves the demo workflow and the code-review graph tools, or with --app your own.",
    short_help="run the server",
)

main = click.Group(
    "runcast",
    context_settings=CONTEXT,
    help="runcast: long-running workflow runs with durable, gap-free event streams.",
)
# The subcommands: `serve` (above), and `runs` (client/cli.py), runs from a server's protocols.
main.add_command(serve_command)
main.add_command(runs)


if __name__ == "__main__":
    main()
