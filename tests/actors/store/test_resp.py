"""actors/store/resp.py: `command` as Redis reads it, `RespReader` on every kind of RESP2 reply
however the bytes are cut, and bytes that are not RESP2 refused as ProtocolViolation."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.store.resp import ProtocolViolation, Reply, RespError, RespReader, command

# --- command -----------------------------------------------------------------------------------


def test_command_is_an_array_of_bulk_strings_with_byte_lengths() -> None:
    assert command("PING") == b"*1\r\n$4\r\nPING\r\n"
    assert command("SET", "k", b"v") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    # lengths count the UTF-8 bytes; an empty argument and binary data travel as they are
    assert command("é", "", b"a\r\nb\x00") == b"*3\r\n$2\r\n\xc3\xa9\r\n$0\r\n\r\n$5\r\na\r\nb\x00\r\n"


def test_a_command_round_trips_through_a_real_redis_server(redis_url: str) -> None:
    """What `command` writes, Redis executes with the arguments intact; what Redis answers, the
    reader reads: a value with CR LF and NUL bytes in it comes back byte for byte."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    value = b"line one\r\nline two\x00\xff" + "é🙂".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            command("SET", "rc:test:k", value)
            + command("GET", "rc:test:k")
            + command("GET", "rc:test:missing")
            + command("RPUSH", "rc:test:l", "a", "b", "c")
            + command("LRANGE", "rc:test:l", "0", "-1")
            + command("NOSUCHCOMMAND")
        )
        reader = RespReader()
        replies: list[Reply | RespError] = []
        while len(replies) < 6:
            data = connection.recv(7)  # small reads: replies arrive cut anywhere
            assert data, "redis closed the connection"
            reader.feed(data)
            replies += reader.replies()
    ok, got, missing, pushed, listed, error = replies
    assert (ok, got, missing, pushed, listed) == ("OK", value, None, 3, [b"a", b"b", b"c"])
    assert isinstance(error, RespError) and "unknown command" in error.message


# --- the reader, reply by reply ----------------------------------------------------------------


def read_all(data: bytes) -> list[Reply | RespError]:
    reader = RespReader()
    reader.feed(data)
    return list(reader.replies())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"+OK\r\n", "OK"),
        (b"+\r\n", ""),
        (b"-ERR wrong type\r\n", RespError("ERR wrong type")),
        (b":0\r\n", 0),
        (b":42\r\n", 42),
        (b":-7\r\n", -7),
        (b"$5\r\nhello\r\n", b"hello"),
        (b"$0\r\n\r\n", b""),
        (b"$4\r\na\r\nb\r\n", b"a\r\nb"),  # the length, not CR LF, ends a bulk string
        (b"$-1\r\n", None),
        (b"*-1\r\n", None),
        (b"*0\r\n", []),
        (b"*3\r\n$9\r\nsubscribe\r\n$4\r\nrc:x\r\n:1\r\n", [b"subscribe", b"rc:x", 1]),
        (b"*4\r\n+a\r\n:1\r\n$-1\r\n$1\r\nb\r\n", ["a", 1, None, b"b"]),
        (b"*2\r\n*2\r\n:1\r\n*1\r\n$1\r\nx\r\n*0\r\n", [[1, [b"x"]], []]),
    ],
    ids=[
        "simple", "empty simple", "error", "zero", "integer", "negative", "bulk", "empty bulk",
        "bulk with CRLF", "null bulk", "null array", "empty array", "message", "mixed array",
        "nested arrays",
    ],
)
def test_each_kind_of_reply_reads_as_its_python_value(data: bytes, expected: object) -> None:
    assert read_all(data) == [expected]


def test_replies_come_in_order_and_an_incomplete_one_waits_for_the_rest() -> None:
    reader = RespReader()
    reader.feed(b"+first\r\n:2\r\n*2\r\n$3\r\nabc\r\n$5\r\nhel")
    assert list(reader.replies()) == ["first", 2]
    assert list(reader.replies()) == []  # the array is not complete yet, and is not lost
    reader.feed(b"lo\r")
    assert list(reader.replies()) == []
    reader.feed(b"\n$-1\r\n-ERR x")
    assert list(reader.replies()) == [[b"abc", b"hello"], None]
    reader.feed(b"\r\n")
    assert list(reader.replies()) == [RespError("ERR x")]


# --- any cut of a stream of replies ------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
leaves: st.SearchStrategy[Reply] = st.one_of(
    texts,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=40),
    st.none(),
)
values: st.SearchStrategy[Reply] = st.recursive(
    leaves, lambda items: st.lists(items, max_size=5), max_leaves=20
)
replies_strategy = st.lists(
    st.one_of(values, texts.map(RespError)), min_size=1, max_size=15
)


def encode(reply: Reply | RespError) -> bytes:
    """RESP2 as Redis writes it, independently of the module under test."""
    if isinstance(reply, RespError):
        return b"-" + reply.message.encode() + b"\r\n"
    if isinstance(reply, str):
        return b"+" + reply.encode() + b"\r\n"
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if isinstance(reply, bytes):
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if reply is None:
        return b"$-1\r\n"
    return b"*%d\r\n" % len(reply) + b"".join(encode(item) for item in reply)


@given(replies=replies_strategy, data=st.data())
def test_any_split_of_a_stream_of_replies_reads_the_same_replies_in_order(
    replies: list[Reply | RespError], data: st.DataObject
) -> None:
    stream = b"".join(encode(reply) for reply in replies)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=len(stream) + 1)))
    bounds = [0, *cuts, len(stream)]
    reader = RespReader()
    got: list[Reply | RespError] = []
    for start, stop in zip(bounds, bounds[1:]):
        reader.feed(stream[start:stop])
        got += reader.replies()
    assert got == replies
    reader.feed(b"")
    assert list(reader.replies()) == []  # nothing left over, nothing read twice


# --- bytes that are not RESP2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n",  # an empty line where a reply starts
        b"?what\r\n",  # an unknown type
        b"hello\r\n",  # an inline text, not a reply
        b"*2\r\n-ERR inside\r\n:1\r\n",  # an error inside an array (never sent by pub/sub)
        b"+OK\r\n\r\n",  # after a good reply
        b"*1\r\n\r\n",  # inside an array
    ],
    ids=["empty line", "unknown type", "inline", "error in array", "after a reply", "in an array"],
)
def test_bytes_that_are_not_resp2_raise_protocol_violation(data: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        read_all(data)


@pytest.mark.parametrize("data", [b":abc\r\n", b"$x\r\n", b"*y\r\n", b":\r\n", b"+\xff\r\n"])
def test_bad_numbers_or_text_raise_protocol_violation(data: bytes) -> None:
    reader = RespReader()
    reader.feed(data)
    with pytest.raises(ProtocolViolation):
        list(reader.replies())


def test_a_bulk_string_not_ended_by_crlf_is_refused() -> None:
    reader = RespReader()
    reader.feed(b"$3\r\nabcXY+OK\r\n")
    with pytest.raises(ProtocolViolation):
        list(reader.replies())
