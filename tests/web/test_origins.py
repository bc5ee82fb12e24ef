"""web/origins.py, the `--allowed-origins` policy, without sockets: parsing the option, reading
the Origin of a scope, and which origins a server at a given address allows."""

from __future__ import annotations

import pytest

from web.origins import OriginPolicy, origin_header, parse_allowed_origins, parse_origin

SERVER = ("127.0.0.1", 7777)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("http://127.0.0.1:7777", ("http", "127.0.0.1", 7777)),
        ("https://localhost:7777", ("https", "localhost", 7777)),
        ("http://[::1]:7777", ("http", "::1", 7777)),
        ("HTTP://App.Example", ("http", "app.example", 80)),
        ("https://app.example", ("https", "app.example", 443)),
        ("http://app.example:443", ("http", "app.example", 443)),
    ],
)
def test_parse_origin(text: str, parsed: tuple[str, str, int]) -> None:
    assert parse_origin(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "null",
        "",
        "*",
        "app.example",
        "ftp://app.example",
        "file://",
        "http://",
        "http://app.example/",
        "http://app.example/path",
        "http://app.example?x=1",
        "http://app.example#top",
        "http://user@app.example",
        "http://app.example:",
        "http://app.example:99999",
        "http://app.example:port",
        "http://[::1",
        " http://app.example",
        "http://app.example\t",
        "http://app.exämple",
    ],
)
def test_what_is_not_an_origin(text: str) -> None:
    assert parse_origin(text) is None


def test_the_option_is_normalised_as_browsers_write_origins() -> None:
    assert parse_allowed_origins("HTTP://App.Example:80, https://x.example:8443,http://[::1]:9") == (
        "http://app.example",
        "https://x.example:8443",
        "http://[::1]:9",
    )
    assert parse_allowed_origins("*") == ("*",)
    assert parse_allowed_origins("http://a.example,http://A.example:80") == ("http://a.example",)
    assert parse_allowed_origins("") == parse_allowed_origins("  ") == ()


@pytest.mark.parametrize(
    "text", ["null", "app.example", "http://a.example,", "http://a.example,,*", "http://a.example/"]
)
def test_a_bad_option_value_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_allowed_origins(text)


def test_origin_header_reads_the_scope_headers() -> None:
    assert origin_header([(b"host", b"x"), (b"Origin", b"http://a.example")]) == "http://a.example"
    assert origin_header([(b"origin", b"null")]) == "null"
    assert origin_header([(b"origin", b"")]) == ""
    assert origin_header([(b"host", b"x")]) is None


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:7777",
        "http://localhost:7777",
        "http://[::1]:7777",
        "https://127.0.0.1:7777",
        "https://localhost:7777",
        "https://[::1]:7777",
        "http://LOCALHOST:7777",
    ],
)
def test_by_default_the_loopback_origins_of_the_servers_own_port_are_allowed(origin: str) -> None:
    assert OriginPolicy().allows(origin, SERVER)
    assert OriginPolicy().allows(origin, ("0.0.0.0", 7777))


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",  # another port of the same machine
        "http://localhost",
        "http://127.0.0.2:7777",
        "http://evil.example",
        "http://evil.example:7777",  # a name that resolves to 127.0.0.1 (DNS rebinding)
        "http://localhost.evil.example:7777",
        "null",  # a file:// page or a sandboxed frame
        "",
        "http://localhost:7777/",
    ],
)
def test_by_default_every_other_origin_is_refused(origin: str) -> None:
    assert not OriginPolicy().allows(origin, SERVER)


def test_the_default_follows_the_port_the_request_came_in_on() -> None:
    assert OriginPolicy().allows("http://localhost:80", ("127.0.0.1", 80))
    assert OriginPolicy().allows("http://localhost", ("127.0.0.1", 80))
    assert OriginPolicy().allows("https://localhost", ("127.0.0.1", 443))
    assert not OriginPolicy().allows("http://localhost:7777", ("127.0.0.1", 8000))
    assert not OriginPolicy().allows("http://localhost:7777", None)  # no address: a Unix socket


def test_a_list_allows_exactly_its_origins() -> None:
    policy = OriginPolicy(parse_allowed_origins("http://app.example,https://x.example:8443"))
    assert policy.allows("http://app.example", SERVER)
    assert policy.allows("http://APP.example:80", SERVER)
    assert policy.allows("https://x.example:8443", SERVER)
    assert not policy.allows("https://app.example", SERVER)
    assert not policy.allows("https://x.example", SERVER)
    assert not policy.allows("http://127.0.0.1:7777", SERVER)  # the list replaces the default
    assert not policy.allows("null", SERVER)


def test_an_empty_list_allows_no_origin() -> None:
    policy = OriginPolicy(())
    assert not policy.allows("http://127.0.0.1:7777", SERVER)
    assert not policy.allows("http://app.example", SERVER)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "junk"])
def test_star_allows_any_origin(origin: str) -> None:
    assert OriginPolicy(("*",)).allows(origin, SERVER)
    assert OriginPolicy(("http://app.example", "*")).allows(origin, SERVER)
