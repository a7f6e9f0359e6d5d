"""Fetching: conditional GET, limits, redirects and the SSRF guard, against a real server."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from urllib.parse import urlsplit

import httpcore
import pytest

from aggregator.demo import SampleWeb
from aggregator.fetch import (
    AsyncFetcher,
    BlockedAddress,
    Fetcher,
    GuardedBackend,
    check_host,
    user_agent,
)
from aggregator.models import Validators
from tests.conftest import SITE, free_port, hang, redirect, respond, silent_address

FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


def fetcher(**kwargs: object) -> Fetcher:
    kwargs.setdefault("allow_private_hosts", True)
    kwargs.setdefault("timeout", 2.0)
    return Fetcher(**kwargs)  # type: ignore[arg-type]


def test_body_validators_and_user_agent(web: SampleWeb) -> None:
    web.routes["/feed.xml"] = respond(
        200, FEED, "application/rss+xml", ETag='"v1"', Last_Modified="Tue, 24 Nov 2026 10:00:00 GMT"
    )
    with fetcher(agent=user_agent("https://news.example/")) as f:
        res = f.get(web.url("feed.xml"))
    assert res.ok and res.status == 200 and res.content == FEED
    assert res.validators == Validators('"v1"', "Tue, 24 Nov 2026 10:00:00 GMT")
    agent = web.seen("/feed.xml")[0]["user-agent"]
    assert agent.startswith("balanced-news/") and "https://news.example/" in agent


def test_conditional_get_sends_validators_and_reads_304(web: SampleWeb) -> None:
    web.routes["/feed.xml"] = respond(304)
    with fetcher() as f:
        res = f.get(web.url("feed.xml"), Validators('"v1"', "Tue, 24 Nov 2026 10:00:00 GMT"))
    assert res.not_modified and res.ok and res.content == b""
    headers = web.seen("/feed.xml")[0]
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Tue, 24 Nov 2026 10:00:00 GMT"


@pytest.mark.parametrize(("status", "error"), [(500, "HTTP 500"), (404, "HTTP 404")])
def test_http_errors_are_one_line(web: SampleWeb, status: int, error: str) -> None:
    web.routes["/feed.xml"] = respond(status, b"oops")
    with fetcher() as f:
        res = f.get(web.url("feed.xml"))
    assert res.status == status and res.error is not None and res.error.startswith(error)


def test_read_timeout_is_reported(web: SampleWeb) -> None:
    web.routes["/slow.xml"] = hang(60)
    with fetcher(timeout=0.5) as f:
        res = f.get(web.url("slow.xml"))
    assert res.error == "read timed out after 0.5s"
    assert res.elapsed < 30, "cut off by the timeout, not by the server's answer at 60 s"


def test_refused_connection_is_reported() -> None:
    port = free_port()
    with fetcher() as f:
        res = f.get(f"http://127.0.0.1:{port}/feed.xml")
    assert res.error is not None and res.error.startswith("cannot connect")


def test_size_cap_declared_and_streamed(web: SampleWeb) -> None:
    web.routes["/big.xml"] = respond(200, b"x" * 5000)
    bomb = gzip.compress(b"<rss>" + b" " * 2_000_000)
    web.routes["/bomb.xml"] = respond(200, bomb, Content_Encoding="gzip")
    with fetcher() as f:
        big = f.get(web.url("big.xml"), max_bytes=1000)
        inflated = f.get(web.url("bomb.xml"), max_bytes=100_000)
    assert big.error == "response too large (5000 bytes, limit 1000)"
    assert len(bomb) < 100_000  # small on the wire: the cap is on what it inflates to
    assert inflated.error == "response too large (over 100000 bytes)"


def test_redirects_followed_up_to_the_cap(web: SampleWeb) -> None:
    web.routes["/old.xml"] = redirect("/new.xml", 301)
    web.routes["/new.xml"] = respond(200, FEED)
    web.routes["/loop-a"] = redirect("/loop-b")
    web.routes["/loop-b"] = redirect("/loop-a")
    for n in range(4):
        web.routes[f"/hop{n}"] = redirect(f"/hop{n + 1}")
    with fetcher(max_redirects=2) as f:
        moved = f.get(web.url("old.xml"))
        loop = f.get(web.url("loop-a"))
        chain = f.get(web.url("hop0"))
    assert moved.ok and moved.content == FEED and moved.final_url == web.url("new.xml")
    assert loop.error is not None and loop.error.startswith("redirect loop")
    assert chain.error == "too many redirects (more than 2)"


def test_private_addresses_refused_by_default(web: SampleWeb) -> None:
    web.routes["/feed.xml"] = respond(200, FEED)
    with Fetcher() as f:
        res = f.get(web.url("feed.xml"))
    assert res.error is not None and "--allow-private-hosts" in res.error
    assert web.seen("/feed.xml") == []  # refused before any request was made


def test_check_host_blocks_private_ranges() -> None:
    for url in (
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://169.254.169.254/",
        "http://[::1]/",
    ):
        with pytest.raises(BlockedAddress):
            check_host(url)
    check_host("http://93.184.215.14/")  # a public address passes


def test_waiting_for_a_busy_host_is_not_counted_against_the_total_timeout(web: SampleWeb) -> None:
    """Six feeds on one host, one request at a time, each taking 0.5 s: the last waits 2.5 s
    for its turn, yet only its own half second counts against the 2 s total (a margin of
    1.5 s for a loaded machine; counting the wait would fail the last two)."""

    def slow(h) -> None:  # noqa: ANN001 - the stdlib handler
        time.sleep(0.5)
        respond(200, FEED, "application/rss+xml")(h)

    feeds = 6
    for n in range(feeds):
        web.routes[f"/slow{n}.xml"] = slow

    async def fetch_all() -> list:
        async with AsyncFetcher(
            allow_private_hosts=True, timeout=10.0, total_timeout=2.0, per_host=1
        ) as f:
            return await asyncio.gather(*(f.get(web.url(f"slow{n}.xml")) for n in range(feeds)))

    started = time.perf_counter()
    results = asyncio.run(fetch_all())
    assert time.perf_counter() - started > 2.0, "the queue outlasts the total timeout"
    assert [r.error for r in results] == [None] * feeds
    assert all(r.content == FEED for r in results)


def _get_through(backend: GuardedBackend, url: str) -> httpcore.Response:
    async def go() -> httpcore.Response:
        async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
            return await pool.request("GET", url)

    return asyncio.run(go())


def test_connections_are_opened_only_to_checked_addresses(web: SampleWeb) -> None:
    """The guard resolves the name itself and connects to an address it has checked, so a DNS
    answer that changes after the check (rebinding) cannot reach an internal service."""
    web.routes["/feed.xml"] = respond(200, FEED)
    port = urlsplit(web.base).port
    url = f"http://localhost:{port}/feed.xml"
    with pytest.raises(BlockedAddress, match=r"refused to fetch localhost \((127\.0\.0\.1|::1)\)"):
        _get_through(GuardedBackend(), url)
    assert web.seen("/feed.xml") == []
    response = _get_through(GuardedBackend(blocked=lambda ip: False), url)
    assert response.status == 200 and response.content == FEED
    assert web.seen("/feed.xml")[0]["host"] == f"localhost:{port}"  # the name, not the IP
    with pytest.raises(BlockedAddress, match=r"localhost \(127\.0\.0\.1\)"):
        _get_through(GuardedBackend(blocked=lambda ip: str(ip) == "127.0.0.1"), url)


def test_a_dns_answer_that_changes_after_the_check_reaches_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name answers an allowed address when it is checked and an internal
    one on every later lookup. 127.0.0.2 plays the public outlet, 127.0.0.1 the internal
    service (blocked here), both on one port. The guard looks the name up once and connects to
    the address it checked: the outlet answers, the internal service sees no request; a
    backend that looked the name up again to connect would reach it."""
    port = free_port()
    answers = iter(["127.0.0.2"])  # the first lookup (the check); "127.0.0.1" ever after
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - socket's
        if host not in ("rebind.test", b"rebind.test"):  # anyio asks in bytes
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(next(answers, "127.0.0.1"))
        return real_getaddrinfo(lookups[-1], *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    guard = GuardedBackend(blocked=lambda ip: str(ip) == "127.0.0.1")
    with SampleWeb(SITE, "127.0.0.2", port) as outlet, SampleWeb(SITE, "127.0.0.1", port) as inner:
        outlet.routes["/feed.xml"] = respond(200, FEED)
        inner.routes["/feed.xml"] = respond(200, b"internal secret")
        response = _get_through(guard, f"http://rebind.test:{port}/feed.xml")
        assert response.status == 200 and response.content == FEED
        assert lookups == ["127.0.0.2"], "one lookup, checked, then used"
        assert inner.seen("/feed.xml") == [] and len(outlet.seen("/feed.xml")) == 1
        # Once the name has rebound, the check refuses it before any connection is made.
        with pytest.raises(BlockedAddress, match=r"rebind\.test \(127\.0\.0\.1\)"):
            _get_through(guard, f"http://rebind.test:{port}/feed.xml")
        assert inner.seen("/feed.xml") == []


def test_the_fetcher_connects_through_the_guard_unless_private_hosts_are_allowed() -> None:
    async def backends() -> list[object]:
        found = []
        for allow in (False, True):
            async with AsyncFetcher(allow_private_hosts=allow) as fetcher:
                found.append(fetcher._host("https://example.invalid/").transport.backend)  # noqa: SLF001
        return found

    guarded, plain = asyncio.run(backends())
    assert isinstance(guarded, GuardedBackend)
    assert not isinstance(plain, GuardedBackend)


def test_an_address_that_does_not_answer_is_raced_not_waited_for() -> None:
    """Of several checked addresses, the next is tried a quarter of a second after the one
    before it started, as a connect by name would race them: an address that drops packets
    does not cost the whole connect timeout."""
    backend = GuardedBackend(blocked=lambda ip: False)

    async def connect(addresses: list[str], port: int) -> float:
        started = time.perf_counter()
        stream = await backend.connect_any(addresses, port, timeout=10)
        await stream.aclose()
        return time.perf_counter() - started

    with silent_address("127.0.0.2") as port, SampleWeb(SITE, "127.0.0.1", port):
        assert asyncio.run(connect(["127.0.0.2", "127.0.0.1"], port)) < 5  # not the 10 s timeout
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(connect(["127.0.0.1"], free_port()))
