"""Decoding what a WebSocket server sends, sans-IO: bytes in, messages and control frames out.

The harness's client spends its CPU where the server under test would want it (both share two
cores), and wsproto's general decoder costs about 25 us per frame here, more than the server
spends sending it. A server's frames are simpler than frames in general: never masked, and with
no extension negotiated (the harness offers none) never compressed, so this decoder reads them
with a few byte operations each: text messages (fragmented or not), close, ping; pong frames are
dropped. Anything else is a protocol error, named.
"""

from __future__ import annotations

import attrs

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
NO_STATUS = 1005  # RFC 6455: a Close without a status code


class ServerProtocolError(Exception):
    """The server sent something no WebSocket server may send to this client."""


@attrs.frozen
class Close:
    code: int
    reason: str


@attrs.frozen
class Ping:
    payload: bytes


Received = str | Close | Ping  # a str is one whole text message


class ServerFrameDecoder:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._parts: list[bytes] | None = None  # a fragmented text message being read

    def feed(self, data: bytes) -> list[Received]:
        """Everything the bytes received so far complete, in order; a partial frame waits for
        the next call."""
        buffer = self._buffer
        buffer += data
        received: list[Received] = []
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            if second & 0x80:
                raise ServerProtocolError("the server masked a frame")
            if first & 0x70:
                raise ServerProtocolError("a frame has reserved bits set, but no extension was agreed")
            length, start = second & 0x7F, position + 2
            if length == 126:
                start += 2
                if start > size:
                    break
                length = int.from_bytes(buffer[position + 2 : start], "big")
            elif length == 127:
                start += 8
                if start > size:
                    break
                length = int.from_bytes(buffer[position + 2 : start], "big")
            end = start + length
            if end > size:
                break
            self._frame(first & 0x80, first & 0x0F, bytes(buffer[start:end]), received)
            position = end
        del buffer[:position]
        return received

    def _frame(self, fin: int, opcode: int, payload: bytes, received: list[Received]) -> None:
        if opcode == OP_TEXT or opcode == OP_CONTINUATION:
            if (opcode == OP_TEXT) != (self._parts is None):
                raise ServerProtocolError(
                    "a continuation frame outside a message" if opcode == OP_CONTINUATION
                    else "a new text message inside a fragmented one"
                )
            if fin and self._parts is None:
                received.append(payload.decode())
            elif fin:
                assert self._parts is not None
                self._parts.append(payload)
                received.append(b"".join(self._parts).decode())
                self._parts = None
            elif self._parts is None:
                self._parts = [payload]
            else:
                self._parts.append(payload)
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NO_STATUS
            received.append(Close(code, payload[2:].decode()))
        elif opcode == OP_PING:
            received.append(Ping(payload))
        elif opcode != OP_PONG:
            kind = "binary" if opcode == OP_BINARY else f"opcode {opcode:#x}"
            raise ServerProtocolError(f"the server sent a {kind} frame; the harness reads text only")
