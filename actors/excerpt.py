"""`excerpt(text)`: how an error message quotes what a client sent.

Error messages name what was wrong and often quote the client's value (`Workflow X not found`,
`Unknown action: X`). The value is the client's and has any length; the message quotes at most
`EXCERPT_LENGTH` characters of it: a longer value is cut there and ends with an ellipsis and its
length (`Workflow wwww… (900000 characters) not found`): a 900 KB id gets no 900 KB reply.
"""

from __future__ import annotations

EXCERPT_LENGTH = 200


def excerpt(text: str) -> str:
    """`text` itself if it has at most `EXCERPT_LENGTH` characters, else its first ones, `…`
    and how many characters it has."""
    if len(text) <= EXCERPT_LENGTH:
        return text
    return f"{text[:EXCERPT_LENGTH]}… ({len(text)} characters)"
