"""Helpers for tests that run `runcast serve` as a separate process on a fixed port."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # bind as the server does: TIME_WAIT leftovers of an earlier run do not make it busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_health(url: str, server: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"runcast serve exited with {server.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"runcast serve did not answer {url} within {timeout} s")


def stop_cleanly(server: subprocess.Popen[bytes], what: str) -> None:
    """SIGTERM to a server started with `stderr=subprocess.PIPE`: it must exit 0 within 20 s,
    with no traceback on stderr."""
    server.send_signal(signal.SIGTERM)
    try:
        _, stderr = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError(f"{what} did not stop within 20 s of SIGTERM") from None
    assert server.returncode == 0, stderr.decode(errors="replace")
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")
