"""Helpers for tests that run `runcast serve` as a separate process on a fixed port."""

from __future__ import annotations

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
