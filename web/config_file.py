"""`runcast serve --config FILE`: options from a TOML file, read with the standard library.

Top-level keys are the options' names, with dashes or underscores (`demo-step-delay` and
`demo_step_delay` are one key); each value has the TOML type its option takes (`port = 7777`,
`store = "sqlite:x.db"`, `lease-ttl = 10` or `10.5`). The file gives defaults: a flag or an
environment variable wins over it. Reading it refuses, with a `ConfigError` naming the file (and
the key, when one is at fault): a file that cannot be read, one that is not TOML, an unknown key,
one option given twice, a value of another type. Whether a value is in its option's range is the
option's to say, like for a flag.
"""

from __future__ import annotations

import datetime
import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs


class ConfigError(ValueError):
    """The config file cannot be used; the message (one line) names the file, and the key."""


@attrs.frozen
class TomlType:
    """The TOML values an option takes: of `types` exactly (a boolean is no integer). A list
    is an array of strings, which the option gets as one comma-separated text, as its flag
    takes it (`allowed-origins = ["https://a.example", "https://b.example"]`)."""

    types: tuple[type, ...]
    described: str  # "an integer"

    def accepts(self, value: object) -> bool:
        if type(value) not in self.types:
            return False
        return not isinstance(value, list) or all(isinstance(item, str) for item in value)


INTEGER = TomlType((int,), "an integer")
NUMBER = TomlType((int, float), "a number")
STRING = TomlType((str,), "a string")
STRINGS = TomlType((str, list), "a string or an array of strings")

_TOML_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
    datetime.datetime: "a date-time",
    datetime.date: "a date",
    datetime.time: "a time",
}


@attrs.frozen
class ConfigFile:
    path: Path
    values: dict[str, Any]  # by option name in underscores (`demo_step_delay`)
    keys: dict[str, str]  # the key as the file spells it, by option name

    def where(self, name: str) -> str:
        """`demo-step-delay in /etc/runcast.toml`: where the value of option `name` was read."""
        return f"{self.keys[name]} in {self.path}"


def read_config(path: Path, options: Mapping[str, TomlType]) -> ConfigFile:
    """The values of the file at `path` for `options` (TOML types by option name, in
    underscores)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as unreadable:
        raise ConfigError(f"cannot read the config file {path}: {unreadable.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the config file {path} is not UTF-8 text") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as invalid:
        raise ConfigError(f"the config file {path} is not valid TOML: {invalid}") from None
    config = ConfigFile(path, {}, {})
    for key, value in document.items():
        name = key.replace("-", "_")
        if name not in options and isinstance(value, dict):
            raise ConfigError(f"{path}: unknown table [{key}]: the options are top-level keys")
        if name not in options:
            raise ConfigError(f"{path}: unknown key {key!r}{_suggestion(key, options)}")
        if name in config.keys:
            raise ConfigError(f"{path}: {config.keys[name]!r} and {key!r} are the same option")
        config.keys[name] = key
        wanted = options[name]
        if not wanted.accepts(value):
            found = _TOML_NAMES.get(type(value), type(value).__name__)
            raise ConfigError(
                f"{config.where(name)} must be {wanted.described}, got {found} ({value!r})"
            )
        config.values[name] = ",".join(value) if isinstance(value, list) else value
    return config


def _suggestion(key: str, options: Mapping[str, TomlType]) -> str:
    spelled = [name.replace("_", "-") for name in options]
    close = difflib.get_close_matches(key.replace("_", "-"), spelled, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (the keys are: {', '.join(spelled)})"
