"""The one strict cattrs converter, and `structure_strictly`, which builds attrs classes from
decoded JSON with it or raises `InvalidDocument` naming every problem.

The converter never coerces: `"5"` is not an integer, `true` is not an integer, `123` is not a
string, `null` or a list is not an object; a field of the wrong JSON type, an integer out of its
range, a missing field and an unknown field are each named. Integers are 64-bit
(`INT64_MIN`..`INT64_MAX`); an `EventCursor` is -1 (nothing seen yet) or an event index. orjson
decodes an integer beyond 64 bits as a float, so an integral float that large is an integer out of
range, not "a number". Nested problems are named by their path (`nodes.a.function`). Messages
quote the client's values and keys through `actors.excerpt`.

Every inbound document is built here: the commands of the workflow protocol (`web.commands`),
graph definitions, graph run requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NewType

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.cols import mapping_structure_factory
from cattrs.gen import make_dict_structure_fn

from actors.excerpt import excerpt


class InvalidDocument(ValueError):
    """An inbound document that is not what it must be (not JSON, or JSON that does not build the
    class asked for); the message, meant for the client, names every problem."""


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EventCursor = NewType("EventCursor", int)  # -1 (nothing seen yet) or an event index


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


class WrongType(TypeError):
    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(f"must be {expected}, got {json_type(value)}")


class OutOfRange(ValueError):
    def __init__(self, low: int, high: int, value: int | float) -> None:
        super().__init__(
            f"is out of range: it must be an integer from {low} to {high}, got {value!r}"
        )


def json_integer(value: Any) -> int | None:
    """The integer a decoded JSON value holds, or None: an int (not a bool) as it is, and an
    integral float beyond 64 bits, which is how orjson decodes an integer literal that large."""
    if isinstance(value, float) and value.is_integer() and abs(value) > INT64_MAX:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise WrongType("a string", value)
    return value


def _integer_between(value: Any, low: int, high: int) -> int:
    number = json_integer(value)
    if number is None:
        raise WrongType("an integer", value)
    if not low <= number <= high:
        raise OutOfRange(low, high, value)
    return number


def _strict_int(value: Any, _: type) -> int:
    return _integer_between(value, INT64_MIN, INT64_MAX)


def _event_cursor(value: Any, _: type) -> EventCursor:
    return EventCursor(_integer_between(value, -1, INT64_MAX))


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongType("a number", value)
    return float(value)


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise WrongType("a boolean", value)
    return value


def _objects_only(structure: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wrap a hook that builds from a JSON object so anything else is refused by its JSON type."""

    def strict(value: Any, cls: Any) -> Any:
        if not isinstance(value, dict):
            raise WrongType("an object", value)
        return structure(value, cls)

    return strict


def _is_mapping(cls: Any) -> bool:
    return getattr(cls, "__origin__", cls) is dict


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(EventCursor, _event_cursor)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: _objects_only(make_dict_structure_fn(cls, converter))
    )
    # not `converter.gen_structure_mapping`: it also registers the lax hook for that type
    converter.register_structure_hook_factory(
        _is_mapping, lambda cls: _objects_only(mapping_structure_factory(cls, converter))
    )
    return converter


converter = make_converter()


def describe_errors(error: ClassValidationError | IterableValidationError, where: str) -> str:
    """One readable sentence per problem: `name is required`, `count must be an integer, got
    string`, `unknown field for graph: foo` (`where` names the document), and for nested documents
    the path: `nodes.check.function must be a string, got integer`. Keys, names and values the
    client sent are quoted through `excerpt`."""
    return "; ".join(_problems(error, where, ""))


def _problems(
    error: ClassValidationError | IterableValidationError, where: str, path: str
) -> list[str]:
    problems: list[str] = []
    with_notes, without_notes = error.group_exceptions()
    for exc, note in with_notes:
        name = note.name if isinstance(note, AttributeValidationNote) else note.index
        inner = f"{path}.{excerpt(str(name))}" if path else excerpt(str(name))
        if isinstance(exc, ClassValidationError | IterableValidationError):
            problems.extend(_problems(exc, inner, inner))
        elif isinstance(exc, KeyError):
            problems.append(f"{inner} is required")
        elif isinstance(exc, WrongType | OutOfRange):
            problems.append(f"{inner} {exc}")
        else:
            problems.append(f"{inner} is invalid: {excerpt(str(exc))}")
    for exc in without_notes:
        if isinstance(exc, ForbiddenExtraKeysError):
            names = excerpt(", ".join(sorted(exc.extra_fields)))
            plural = "s" if len(exc.extra_fields) > 1 else ""
            problems.append(f"unknown field{plural} for {where}: {names}")
        elif isinstance(exc, WrongType):
            problems.append(f"{where} {exc}")
        else:
            problems.append(excerpt(str(exc)))
    return problems


def structure_strictly(data: Any, cls: type[Any], where: str) -> Any:
    """Build `cls` from decoded JSON or raise InvalidDocument naming every problem; `where`
    names the document in the messages."""
    if not isinstance(data, dict):
        raise InvalidDocument(f"{where} must be a JSON object, got {json_type(data)}")
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError) as error:
        raise InvalidDocument(describe_errors(error, where)) from None

