"""benchmarks/server_frames.py against wsproto's encoder: any mix of text messages (whole or
fragmented, with control frames between fragments), pings, pongs and closes, cut into reads at
any points, decodes to the same messages in the same order; what a server must not send is
refused with a message naming it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason, FrameProtocol

from benchmarks.server_frames import (
    Close,
    Ping,
    Received,
    ServerFrameDecoder,
    ServerProtocolError,
)
from web.transport import text_frame


def server() -> FrameProtocol:
    return FrameProtocol(client=False, extensions=[])


texts = st.text(max_size=300) | st.text(min_size=126, max_size=70_000).filter(lambda t: len(t.encode()) > 125)
pings = st.binary(max_size=125).map(Ping)
pongs = st.binary(max_size=125).map(lambda payload: ("pong", payload))
closes = st.tuples(st.sampled_from([1000, 1001, 1011, 4000]), st.text(max_size=20)).map(lambda c: Close(*c))
items = st.lists(
    st.tuples(texts, st.integers(1, 4), st.lists(pings | pongs, max_size=2)) | pings | pongs,
    max_size=12,
)


def encode(item: object, protocol: FrameProtocol) -> tuple[bytes, list[Received]]:
    """The bytes a server sends for `item`, and what the decoder must make of them."""
    if isinstance(item, Ping):
        return bytes(protocol.ping(item.payload)), [item]
    if isinstance(item, tuple) and item[0] == "pong":
        return bytes(protocol.pong(item[1])), []
    text, pieces, controls = item  # type: ignore[misc]  # a drawn triple
    cut = [len(text) * i // pieces for i in range(pieces + 1)]
    data, expected = b"", []
    for i in range(pieces):
        data += bytes(protocol.send_data(text[cut[i] : cut[i + 1]], fin=i == pieces - 1))
        if i < pieces - 1:  # control frames may come between the fragments of a message
            for control in controls:
                frames, more = encode(control, protocol)
                data += frames
                expected += more
    return data, [*expected, text]


@settings(deadline=None, max_examples=300)
@given(items=items, close=st.none() | closes, cuts=st.lists(st.integers(0, 200_000), max_size=8))
def test_any_stream_cut_anywhere_decodes_to_what_was_sent(
    items: list[object], close: Close | None, cuts: list[int]
) -> None:
    protocol = server()
    data, expected = b"", []
    for item in items:
        frames, decoded = encode(item, protocol)
        data += frames
        expected += decoded
    if close is not None:
        data += bytes(protocol.close(close.code, close.reason))
        expected.append(close)
    decoder = ServerFrameDecoder()
    received: list[Received] = []
    points = sorted({min(cut, len(data)) for cut in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        received += decoder.feed(data[start:end])
    assert received == expected


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_every_length_encoding_of_the_servers_own_frames(length: int) -> None:
    text = "x" * length
    assert ServerFrameDecoder().feed(text_frame(text) * 2) == [text, text]


def test_a_close_without_a_status_reads_as_1005() -> None:
    assert ServerFrameDecoder().feed(b"\x88\x00") == [Close(CloseReason.NO_STATUS_RCVD, "")]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes(FrameProtocol(client=True, extensions=[]).send_data("hi")), "masked a frame"),
        (b"\xc1\x02hi", "reserved bits set"),
        (bytes(server().send_data(b"\x00\x01")), "binary frame"),
        (b"\x83\x00", "opcode 0x3"),
        (b"\x80\x02hi", "continuation frame outside a message"),
        (b"\x01\x01h\x81\x01i", "new text message inside a fragmented one"),
    ],
)
def test_what_a_server_must_not_send_is_refused_by_name(data: bytes, problem: str) -> None:
    with pytest.raises(ServerProtocolError, match=problem):
        ServerFrameDecoder().feed(data)
