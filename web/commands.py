"""The commands clients send on `/workflows/ws`, as attrs classes, and `parse_command`, which turns
one text frame into one of them.

`parse_command` raises `BadCommand` with a message for the client that names what was wrong: a
binary frame, bad JSON, not an object, an unknown or missing `action`, and whatever the strict
converter of `actors.converter` finds in the command's fields (a missing field, a field of the
wrong JSON type, an integer out of its range, an unknown field). Nothing is coerced.
"""

from __future__ import annotations

import attrs
import orjson

from actors.converter import EventCursor, InvalidDocument, json_type, structure_strictly
from actors.excerpt import excerpt


class BadCommand(ValueError):
    """A frame that is not a valid command; the message is meant for the client."""


@attrs.frozen
class StartWorkflow:
    workflow_id: str
    message: str = ""
    session_id: str | None = None
    user_id: str | None = None


@attrs.frozen
class Reconnect:
    run_id: str
    last_event_index: EventCursor | None = None
    workflow_id: str | None = None
    session_id: str | None = None


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class Authenticate:
    token: str | None = None


@attrs.frozen
class CancelRun:
    run_id: str
    reason: str | None = None


Command = StartWorkflow | Reconnect | Ping | Authenticate | CancelRun

ACTIONS: dict[str, type[Command]] = {
    "start-workflow": StartWorkflow,
    "reconnect": Reconnect,
    "ping": Ping,
    "authenticate": Authenticate,
    "cancel-run": CancelRun,
}


def parse_command(frame: str | bytes) -> Command:
    if isinstance(frame, bytes):
        raise BadCommand("Binary frames are not supported: send each command as a JSON text frame")
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as error:
        raise BadCommand(f"Invalid JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadCommand(
            f"A command must be a JSON object with an 'action' field, got {json_type(data)}"
        )
    known = ", ".join(ACTIONS)
    if "action" not in data:
        raise BadCommand(f"action is required: one of {known}")
    action = data.pop("action")
    if not isinstance(action, str):
        raise BadCommand(f"action must be one of {known}, got {json_type(action)}")
    command_class = ACTIONS.get(action)
    if command_class is None:
        raise BadCommand(f"Unknown action: {excerpt(action)} (the actions are {known})")
    try:
        command: Command = structure_strictly(data, command_class, action)
    except InvalidDocument as invalid:
        raise BadCommand(str(invalid)) from None
    return command
