"""web/commands.py: strict parsing of client commands (guarantee 6: bad input gets a clear
error). Every problem is a BadCommand naming it; nothing is ever coerced."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web.commands import (
    ACTIONS,
    Authenticate,
    BadCommand,
    CancelRun,
    Ping,
    Reconnect,
    StartWorkflow,
    parse_command,
)


def frame(body: Any) -> str:
    return orjson.dumps(body).decode()


def bad(text: str | bytes) -> str:
    """The BadCommand message for a frame (fails the test if it parses)."""
    with pytest.raises(BadCommand) as raised:
        parse_command(text)
    return str(raised.value)


# --- valid commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "start-workflow", "workflow_id": "w"}, StartWorkflow("w")),
        (
            {
                "action": "start-workflow",
                "workflow_id": "w",
                "message": "hi",
                "session_id": "s",
                "user_id": "u",
            },
            StartWorkflow("w", "hi", "s", "u"),
        ),
        (
            {"action": "start-workflow", "workflow_id": "w", "session_id": None, "user_id": None},
            StartWorkflow("w"),
        ),
        ({"action": "reconnect", "run_id": "r"}, Reconnect("r")),
        ({"action": "reconnect", "run_id": "r", "last_event_index": None}, Reconnect("r", None)),
        ({"action": "reconnect", "run_id": "r", "last_event_index": -1}, Reconnect("r", -1)),
        ({"action": "reconnect", "run_id": "r", "last_event_index": 0}, Reconnect("r", 0)),
        (
            {
                "action": "reconnect",
                "run_id": "r",
                "last_event_index": 41,
                "workflow_id": "w",
                "session_id": "s",
            },
            Reconnect("r", 41, "w", "s"),
        ),
        ({"action": "ping"}, Ping()),
        ({"action": "authenticate"}, Authenticate()),
        ({"action": "authenticate", "token": "t0k"}, Authenticate("t0k")),
        ({"action": "cancel-run", "run_id": "r"}, CancelRun("r")),
        ({"action": "cancel-run", "run_id": "r", "reason": "user"}, CancelRun("r", "user")),
    ],
)
def test_valid_commands_parse(body: dict[str, Any], expected: object) -> None:
    assert parse_command(frame(body)) == expected


def test_every_action_has_a_valid_form() -> None:
    """Each action in the table parses from its minimal form into its own class."""
    minimal = {
        "start-workflow": {"workflow_id": "w"},
        "reconnect": {"run_id": "r"},
        "ping": {},
        "authenticate": {},
        "cancel-run": {"run_id": "r"},
    }
    assert set(minimal) == set(ACTIONS)
    for action, fields in minimal.items():
        assert type(parse_command(frame({"action": action, **fields}))) is ACTIONS[action]


def test_whitespace_and_key_order_do_not_matter() -> None:
    text = '  {"run_id" : "r",\n "last_event_index": 3, "action": "reconnect"}  '
    assert parse_command(text) == Reconnect("r", 3)


def test_unicode_values_are_kept() -> None:
    body = {"action": "start-workflow", "workflow_id": "w", "message": "é🙂"}
    command = parse_command(frame(body))
    assert command == StartWorkflow("w", "é🙂")


# --- bad input: each problem is named ----------------------------------------------------------


@pytest.mark.parametrize("text", ["{", "not json", '{"action": "ping",}', "", "{'a': 1}"])
def test_bad_json(text: str) -> None:
    assert bad(text).startswith("Invalid JSON")


def test_lone_surrogate_is_bad_json_not_a_crash() -> None:
    assert bad('"\ud800"').startswith("Invalid JSON")


@pytest.mark.parametrize("data", [b"{}", b'{"action": "ping"}', b""])
def test_binary_frame(data: bytes) -> None:
    message = bad(data)
    assert "Binary frames are not supported" in message
    assert "JSON text frame" in message


@pytest.mark.parametrize(
    ("body", "kind"),
    [([], "array"), ([{"action": "ping"}], "array"), (5, "integer"), (1.5, "number"),
     ("ping", "string"), (None, "null"), (True, "boolean")],
)
def test_non_object_json(body: Any, kind: str) -> None:
    message = bad(frame(body))
    assert "must be a JSON object" in message
    assert message.endswith(f"got {kind}")


KNOWN_ACTIONS = "start-workflow, reconnect, ping, authenticate, cancel-run"


def test_missing_action_says_it_is_required_and_lists_the_actions() -> None:
    assert bad(frame({})) == f"action is required: one of {KNOWN_ACTIONS}"
    assert bad(frame({"workflow_id": "w"})) == f"action is required: one of {KNOWN_ACTIONS}"


def test_unknown_action_is_named_with_the_actions() -> None:
    assert bad(frame({"action": "frobnicate"})) == (
        f"Unknown action: frobnicate (the actions are {KNOWN_ACTIONS})"
    )
    assert bad(frame({"action": "Ping"})).startswith("Unknown action: Ping (")  # case-sensitive


@pytest.mark.parametrize(
    ("action", "kind"), [(5, "integer"), (None, "null"), (["ping"], "array"), (True, "boolean")]
)
def test_action_of_the_wrong_type_is_named_by_its_type(action: Any, kind: str) -> None:
    assert bad(frame({"action": action})) == f"action must be one of {KNOWN_ACTIONS}, got {kind}"


def test_a_long_unknown_action_is_quoted_in_part() -> None:
    message = bad(frame({"action": "a" * 900_000}))
    assert message == (
        f"Unknown action: {'a' * 200}… (900000 characters) (the actions are {KNOWN_ACTIONS})"
    )


def test_long_unknown_field_names_are_quoted_in_part() -> None:
    one = bad(frame({"action": "ping", "f" * 900_000: 1}))
    assert one == f"unknown field for ping: {'f' * 200}… (900000 characters)"
    many = bad(frame({"action": "ping", **{f"field{i:05}": 1 for i in range(20_000)}}))
    assert many.startswith("unknown fields for ping: field00000, field00001, ")
    assert many.endswith("… (239998 characters)") and len(many) < 300


def frame_text_with_integer(field: str, value: int) -> str:
    """A reconnect frame whose `field` is the JSON integer literal `value`, whatever its size."""
    return f'{{"action": "reconnect", "run_id": "r", "{field}": {value}}}'


@pytest.mark.parametrize(
    ("index", "shown"),
    [(10**30, "1e+30"), (-(10**30), "-1e+30"), (2**64 - 1, str(2**64 - 1)), (2**63, str(2**63)),
     (-2, "-2"), (-(2**63), str(-(2**63)))],
)
def test_a_last_event_index_out_of_range_is_named_with_the_range(index: int, shown: str) -> None:
    """orjson decodes integers beyond 64 bits as floats: 10**30 is still an integer, too large."""
    message = bad(frame_text_with_integer("last_event_index", index))
    assert message == (
        "last_event_index is out of range: it must be an integer from -1 to"
        f" 9223372036854775807, got {shown}"
    )


def test_missing_required_fields() -> None:
    assert bad(frame({"action": "start-workflow"})) == "workflow_id is required"
    assert bad(frame({"action": "start-workflow", "message": "hi"})) == "workflow_id is required"
    assert bad(frame({"action": "reconnect"})) == "run_id is required"
    assert bad(frame({"action": "reconnect", "last_event_index": 3})) == "run_id is required"
    assert bad(frame({"action": "cancel-run"})) == "run_id is required"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"action": "reconnect", "run_id": "r", "last_event_index": "5"},
            "last_event_index must be an integer, got string",
        ),
        (
            {"action": "reconnect", "run_id": "r", "last_event_index": True},
            "last_event_index must be an integer, got boolean",
        ),
        (
            {"action": "reconnect", "run_id": "r", "last_event_index": 5.0},
            "last_event_index must be an integer, got number",
        ),
        (
            {"action": "reconnect", "run_id": "r", "last_event_index": [5]},
            "last_event_index must be an integer, got array",
        ),
        (
            {"action": "start-workflow", "workflow_id": 1},
            "workflow_id must be a string, got integer",
        ),
        (
            {"action": "start-workflow", "workflow_id": 1.5},
            "workflow_id must be a string, got number",
        ),
        (
            {"action": "start-workflow", "workflow_id": None},
            "workflow_id must be a string, got null",
        ),
        (
            {"action": "start-workflow", "workflow_id": {"id": "w"}},
            "workflow_id must be a string, got object",
        ),
        ({"action": "reconnect", "run_id": 7}, "run_id must be a string, got integer"),
        ({"action": "cancel-run", "run_id": False}, "run_id must be a string, got boolean"),
        (
            {"action": "start-workflow", "workflow_id": "w", "message": 3},
            "message must be a string, got integer",
        ),
        ({"action": "authenticate", "token": 123}, "token must be a string, got integer"),
    ],
)
def test_wrong_types(body: dict[str, Any], expected: str) -> None:
    assert bad(frame(body)) == expected


def test_several_problems_are_all_named() -> None:
    message = bad(frame({"action": "reconnect", "run_id": 5, "last_event_index": "x"}))
    assert "run_id must be a string, got integer" in message
    assert "last_event_index must be an integer, got string" in message


def test_unknown_extra_fields_are_named() -> None:
    assert bad(frame({"action": "ping", "x": 1})) == "unknown field for ping: x"
    message = bad(frame({"action": "start-workflow", "workflow_id": "w", "foo": 1, "bar": 2}))
    assert message == "unknown fields for start-workflow: bar, foo"
    message = bad(frame({"action": "reconnect", "run_id": "r", "last_event_idx": 3}))
    assert "last_event_idx" in message and "reconnect" in message


# --- strictness: never coerce ------------------------------------------------------------------


def test_string_is_never_coerced_to_int() -> None:
    with pytest.raises(BadCommand):
        parse_command(frame({"action": "reconnect", "run_id": "r", "last_event_index": "5"}))


def test_int_is_never_coerced_to_string() -> None:
    with pytest.raises(BadCommand):
        parse_command(frame({"action": "start-workflow", "workflow_id": 1}))
    with pytest.raises(BadCommand):
        parse_command(frame({"action": "reconnect", "run_id": 1}))


def test_bool_is_never_coerced_to_int() -> None:
    for value in (True, False):
        with pytest.raises(BadCommand):
            parse_command(frame({"action": "reconnect", "run_id": "r", "last_event_index": value}))


@given(st.integers(min_value=-1, max_value=2**63 - 1))
def test_any_index_in_range_is_kept_exactly(index: int) -> None:
    body = {"action": "reconnect", "run_id": "r", "last_event_index": index}
    command = parse_command(frame(body))
    assert isinstance(command, Reconnect)
    assert type(command.last_event_index) is int and command.last_event_index == index


@given(st.text())
def test_any_string_id_is_kept_exactly(text: str) -> None:
    command = parse_command(frame({"action": "start-workflow", "workflow_id": text}))
    assert command == StartWorkflow(text)


# --- hypothesis: nothing but BadCommand --------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["workflow_id", "run_id", "last_event_index", "message", "session_id", "user_id", "token",
     "reason", "extra"]
)
commandish = st.builds(
    lambda action, fields: {"action": action, **fields},
    st.sampled_from([*ACTIONS, "nope"]) | json_values,
    st.dictionaries(field_names, json_values, max_size=5),
)


def parses_or_bad_command(text: str | bytes) -> None:
    try:
        command = parse_command(text)
    except BadCommand as error:
        assert str(error)  # a message the client can read
    else:
        assert type(command) in ACTIONS.values()


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_values_raise_only_bad_command(value: Any) -> None:
    parses_or_bad_command(frame(value))


@settings(max_examples=300, deadline=None)
@given(commandish)
def test_arbitrary_command_like_objects_raise_only_bad_command(body: dict[str, Any]) -> None:
    parses_or_bad_command(frame(body))


@settings(max_examples=200, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_frames_raise_only_bad_command(text: str | bytes) -> None:
    parses_or_bad_command(text)
