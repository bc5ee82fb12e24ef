"""The `next` / `before` text of `GET /runs`: a `RunCursor` (the last run of a page: its
`created_at` and `run_id`) as an opaque string a client hands back as it got it.

The text is the JSON `[created_at, run_id]` in URL-safe base64 without padding, so it goes into a
query string as it is. Reading it back is strict: only the exact text `cursor_text` writes is a
cursor (a float given as JSON writes it, a non-empty run id), else `BadCursor`.
"""

from __future__ import annotations

import base64
import binascii
import math

import orjson

from actors.store import RunCursor

MAX_CURSOR_CHARACTERS = 2000


class BadCursor(ValueError):
    """Text that is not a cursor this server wrote."""


def cursor_text(cursor: RunCursor) -> str:
    encoded = base64.urlsafe_b64encode(orjson.dumps([float(cursor.created_at), cursor.run_id]))
    return encoded.rstrip(b"=").decode("ascii")


def parse_cursor(text: str) -> RunCursor:
    """The cursor `cursor_text` wrote as `text`; BadCursor for anything else."""
    if not text.isascii() or len(text) > MAX_CURSOR_CHARACTERS:
        raise BadCursor()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        created_at, run_id = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise BadCursor() from None
    if not (
        type(created_at) is float and math.isfinite(created_at)
        and type(run_id) is str and run_id
    ):
        raise BadCursor()
    cursor = RunCursor(created_at, run_id)
    if cursor_text(cursor) != text:
        raise BadCursor()  # another spelling of the same cursor: not one this server wrote
    return cursor
