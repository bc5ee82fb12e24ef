"""The bare-stack ceiling benchmark: every frame is counted, bad requests get an error frame on a
socket that stays usable, on both the Quart route and the raw ASGI route, served by stock Hypercorn
and by runcast's coalescing worker."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url

from benchmarks.bare_stack import (
    DONE,
    QUART_ROUTE,
    RAW_ROUTE,
    TRANSPORTS,
    BadRequest,
    frames_requested,
    measure_ceiling,
    serve_bare,
    step_progress_frame,
)

BAD_REQUESTS = [
    ('{"frames": -1}', "frames must be a positive integer, got -1"),
    ('{"frames": 0}', "frames must be a positive integer, got 0"),
    ('{"frames": "x"}', "frames must be a positive integer, got 'x'"),
    ('{"frames": 2.5}', "frames must be a positive integer, got 2.5"),
    ('{"frames": true}', "frames must be a positive integer, got True"),
    ('{"count": 3}', 'request must be an object {"frames": N}'),
    ("[3]", 'request must be an object {"frames": N}'),
    ("frames=3", "request is not JSON"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_measure_ceiling_receives_every_frame(transport: str) -> None:
    result = measure_ceiling(connections=3, frames_per_connection=500, processes=1, transport=transport)
    assert (result.connections, result.frames_per_connection, result.processes) == (3, 500, 1)
    assert (result.route, result.transport) == (QUART_ROUTE, transport)
    assert result.frames == 3 * 500
    figures = attrs.asdict(result, filter=lambda field, value: field.type == "float")
    assert sorted(figures) == [
        "client_cpu_seconds",
        "client_cpu_us_per_frame",
        "frames_per_second",
        "server_core_percent",
        "server_cpu_seconds",
        "server_cpu_us_per_frame",
        "wall_seconds",
    ]
    assert figures["wall_seconds"] > 0
    assert figures["frames_per_second"] == pytest.approx(result.frames / result.wall_seconds)
    # CPU times come from /proc in clock ticks (10 ms), more than a run this small may use.
    cpu_figures = {name: value for name, value in figures.items() if "cpu" in name or "core" in name}
    assert all(value >= 0 for value in cpu_figures.values()), cpu_figures
    assert result.server_cpu_us_per_frame == pytest.approx(result.server_cpu_seconds / result.frames * 1e6)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("route", [QUART_ROUTE, RAW_ROUTE])
async def test_bad_request_gets_error_frame_and_socket_stays_usable(route: str, transport: str) -> None:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve_bare, 0, 300, transport)
        url = binds[0].replace("http://", "ws://") + route
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                for request, problem in BAD_REQUESTS:
                    await ws.send_message(request)
                    error = json.loads(await ws.get_message())
                    assert error["event"] == "error"
                    assert problem in error["message"], request
                await ws.send_message('{"frames": 3}')
                frames = [await ws.get_message() for _ in range(4)]
        nursery.cancel_scope.cancel()
    assert frames == [step_progress_frame(300)] * 3 + [DONE]


@settings(deadline=None, max_examples=200)
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.lists(st.integers(), max_size=3),
    )
)
def test_frames_requested_takes_only_positive_integers(frames: Any) -> None:
    request = json.dumps({"frames": frames})
    if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0:
        assert frames_requested(request) == frames
    else:
        with pytest.raises(BadRequest, match="frames must be a positive integer") as raised:
            frames_requested(request)
        assert str(raised.value).endswith(f"got {frames!r}")


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=len(step_progress_frame(0)), max_value=4000))
def test_step_progress_frame_has_the_asked_size(frame_bytes: int) -> None:
    frame = step_progress_frame(frame_bytes)
    assert len(frame.encode()) == frame_bytes
    assert json.loads(frame)["event"] == "StepProgress"
