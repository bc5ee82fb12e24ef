"""RESP2, the Redis protocol, as a pure reader and writer for the node's pub/sub connection.

No I/O here: `RespReader.feed` takes bytes as they arrive and `RespReader.replies` gives every
reply complete so far (an array as a list, a bulk string as `bytes`, an integer as `int`, a
simple string as `str`, an error as `RespError`); `command` encodes a command. The socket that
uses them is `actors.store.redis_channels`.

Why not the client library's pub/sub: a message received through coredis costs 90 - 110 us of
CPU on this kind of machine, against 2.5 - 10 us for a reader like this one
(`shared/spec/distribution.md`, section 2), and a follower on a node that does not own its run
gets every event as a message. Its reconnections are also its own, where runcast must know of
each one (messages published meanwhile are lost, so every follower re-reads the stream).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

Reply = list["Reply"] | bytes | int | str | None


@attrs.frozen
class RespError:
    message: str


class ProtocolViolation(Exception):
    """The bytes are not RESP2."""


def command(*parts: str | bytes) -> bytes:
    """The RESP encoding of a command and its arguments."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespReader:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._at = 0

    def feed(self, data: bytes) -> None:
        if self._at:
            del self._buffer[: self._at]
            self._at = 0
        self._buffer += data

    def replies(self) -> Iterator[Reply | RespError]:
        """Every reply complete in what was fed, in order; what is incomplete stays for the next
        `feed`. Raises ProtocolViolation."""
        while True:
            parsed = self._parse(self._at)
            if parsed is None:
                return
            reply, self._at = parsed
            yield reply

    def _line(self, at: int) -> tuple[bytes, int] | None:
        end = self._buffer.find(b"\r\n", at)
        if end < 0:
            return None
        return bytes(self._buffer[at:end]), end + 2

    def _parse(self, at: int) -> tuple[Reply | RespError, int] | None:
        line = self._line(at)
        if line is None:
            return None
        head, at = line
        if not head:
            raise ProtocolViolation("an empty line where a reply starts")
        kind, rest = head[:1], head[1:]
        if kind == b"+":
            return _text(rest), at
        if kind == b"-":
            return RespError(rest.decode(errors="replace")), at
        if kind == b":":
            return _number(rest), at
        if kind == b"$":
            size = _number(rest)
            if size < 0:
                return None, at
            end = at + size
            if len(self._buffer) < end + 2:
                return None
            if self._buffer[end : end + 2] != b"\r\n":
                raise ProtocolViolation(f"a bulk string of {size} bytes not followed by CR LF")
            return bytes(self._buffer[at:end]), end + 2
        if kind == b"*":
            count = _number(rest)
            if count < 0:
                return None, at
            items: list[Reply] = []
            for _ in range(count):
                parsed = self._parse(at)
                if parsed is None:
                    return None
                item, at = parsed
                if isinstance(item, RespError):
                    raise ProtocolViolation("an error inside an array")
                items.append(item)
            return items, at
        raise ProtocolViolation(f"unknown reply type {kind!r}")


def _number(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolViolation(f"not a number: {text[:40]!r}") from None


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(f"a simple string that is not UTF-8: {data[:40]!r}") from None
