"""Which web pages may use the server: the `--allowed-origins` policy, pure (no I/O).

A browser names the page behind a request in its `Origin` header (`scheme://host[:port]`, or
`null` for a `file://` page or a sandbox); scripts and command-line clients send none. The front
end serves a request or a WebSocket handshake that carries an Origin only if the policy allows
that origin:
- by default, the loopback origins of the port the server was reached on: http or https on
  127.0.0.1, localhost or [::1] at the port of the ASGI scope's `server` entry, so the policy
  needs no knowledge of the port it will be bound to;
- with `--allowed-origins`, exactly the origins listed (an empty list allows none), or any origin
  at all, `null` included, when the list has `*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import attrs

ANY_ORIGIN = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Origin = tuple[str, str, int]  # scheme, host (lowercase, IPv6 without brackets), port
Server = tuple[str, int | None] | None  # the ASGI scope's `server`: the bound address and port


def parse_origin(text: str) -> Origin | None:
    """The scheme, host and port of `text` if it is an http or https origin, else None."""
    if not text.isascii() or not text.isprintable() or " " in text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in DEFAULT_PORTS
        or not parts.hostname
        or "@" in parts.netloc
        or parts.netloc.endswith(":")
        or parts.path
        or "?" in text
        or "#" in text
    ):
        return None
    return parts.scheme, parts.hostname, DEFAULT_PORTS[parts.scheme] if port is None else port


def origin_text(origin: Origin) -> str:
    """`origin` as a browser writes it: no default port, IPv6 hosts in brackets."""
    scheme, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if DEFAULT_PORTS[scheme] == port else f"{scheme}://{shown}:{port}"


def parse_allowed_origins(text: str) -> tuple[str, ...]:
    """The value of `--allowed-origins`: comma-separated origins, each as a browser writes it
    (`HTTP://Example.COM:80` is `http://example.com`), or `*`; "" allows no origin. ValueError
    for anything else."""
    if not text.strip():
        return ()
    allowed: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        origin = None if entry == ANY_ORIGIN else parse_origin(entry)
        if entry != ANY_ORIGIN and origin is None:
            raise ValueError(text)
        shown = ANY_ORIGIN if origin is None else origin_text(origin)
        if shown not in allowed:
            allowed.append(shown)
    return tuple(allowed)


def origin_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The `Origin` of an ASGI scope's `headers`, or None if the request has none."""
    for name, value in headers:
        if name.lower() == b"origin":
            return bytes(value).decode("latin-1")
    return None


def refusal(origin: str) -> str:
    """The `detail` of a request refused for its origin."""
    return f"Origin {origin!r} is not allowed (the server's --allowed-origins)"


@attrs.frozen
class OriginPolicy:
    """`allowed`: the origins of `--allowed-origins` (as `parse_allowed_origins` gives them), or
    None for the default, the loopback origins of the server's own port."""

    allowed: tuple[str, ...] | None = None
    _listed: frozenset[Origin] = attrs.field(init=False)
    _any: bool = attrs.field(init=False)

    @_listed.default
    def _parse_listed(self) -> frozenset[Origin]:
        parsed = (parse_origin(entry) for entry in self.allowed or ())
        return frozenset(origin for origin in parsed if origin is not None)

    @_any.default
    def _has_any(self) -> bool:
        return ANY_ORIGIN in (self.allowed or ())

    def allows(self, origin: str, server: Server) -> bool:
        """Whether a request with this `Origin` header, reaching the server at `server`, is
        served."""
        if self._any:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if self.allowed is not None:
            return parsed in self._listed
        return server is not None and parsed[1] in LOOPBACK_HOSTS and parsed[2] == server[1]
