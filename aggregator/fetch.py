"""HTTP fetching: conditional GET, limits, redirects and the SSRF guard.

Every failure comes back as a :class:`FetchResult` with a one-line ``error`` rather than an
exception, so one bad server never stops the others. Redirects are followed by hand so that
each hop passes the same address check as the first request; each connection is checked
again on the address it opens to (:mod:`aggregator.transport`).

:class:`AsyncFetcher` is the one implementation: a pooled ``httpx.AsyncClient`` behind a global
and a per-host limit, so thousands of feeds are polled concurrently without hammering any one
publisher, and a stalled host holds only its own slots. :class:`Fetcher` runs it on a private
event loop for callers that fetch one page at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
import time
import zlib
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
)
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from aggregator import __version__
from aggregator.errors import BlockedAddress as BlockedAddress
from aggregator.errors import TooLarge as TooLarge
from aggregator.models import FetchResult, Validators
from aggregator.transport import GuardedBackend as GuardedBackend
from aggregator.transport import Transport
from aggregator.transport import check_host as check_host

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
T = TypeVar("T")


def user_agent(site_url: str) -> str:
    """A descriptive User-Agent: publishers can see who polls them and where to complain."""
    return f"balanced-news/{__version__} (+{site_url}; feed aggregator)"


def _describe(exc: Exception, timeout: float) -> str:
    """One line for the operator, naming the cause rather than the exception class."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timed out after {timeout:g}s"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in time (too many requests in flight)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or "connection failed"
        return f"cannot connect: {reason}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"server broke the HTTP protocol: {exc}"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error: {exc}"
    return str(exc) or exc.__class__.__name__


class _Inflater:
    """Content-Encoding undone by hand, with ``max_length``, so a gzip bomb stops at the cap
    instead of being inflated in one go (httpx's own decoder has no output limit)."""

    def __init__(self, encoding: str | None, limit: int) -> None:
        self.limit = limit
        self.size = 0
        codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        self.coding = codings[0] if codings else ""
        if self.coding in ("gzip", "x-gzip"):
            self._z: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._z = zlib.decompressobj()
        elif not self.coding:
            self._z = None
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        self._first = True

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None:
            out = chunk
        else:
            room = self.limit - self.size + 1
            try:
                out = self._z.decompress(chunk, room)
            except zlib.error:
                if not (self._first and self.coding == "deflate"):
                    raise
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
                out = self._z.decompress(chunk, room)
            if self._z.unconsumed_tail:
                raise TooLarge
        self._first = False
        self.size += len(out)
        if self.size > self.limit:
            raise TooLarge
        return out

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        out = self._z.flush()
        self.size += len(out)
        if self.size > self.limit:
            raise TooLarge
        return out


@dataclass
class _Host:
    slot: asyncio.Semaphore
    client: httpx.AsyncClient
    transport: Transport
    # when each request holding one of the host's slots got it (event-loop time)
    busy: dict[object, float] = field(default_factory=dict)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every fetcher: building one (loading the CA
    bundle) costs ~18 ms of CPU, which a worker making a fetcher per polled source would pay on
    every poll."""
    return httpx.create_ssl_context()


class AsyncFetcher:
    """A shared async HTTP client with the project's limits; use as an async context manager.

    ``concurrency`` caps requests in flight overall and ``per_host`` per host name; a request
    waits for its host's slot before it takes a global one, so a slow publisher never holds
    slots the others need.
    """

    def __init__(
        self,
        *,
        timeout: float = 20.0,
        total_timeout: float | None = None,
        max_redirects: int = 5,
        allow_private_hosts: bool = False,
        agent: str | None = None,
        concurrency: int = 32,
        per_host: int = 2,
    ) -> None:
        self.timeout = timeout
        self.total_timeout = total_timeout if total_timeout is not None else timeout * 3
        self.max_redirects = max_redirects
        self.allow_private_hosts = allow_private_hosts
        self.per_host = per_host
        self._global = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, _Host] = {}
        self._headers = {"User-Agent": agent or user_agent("https://example.invalid/")}
        self._ssl = _ssl_context()

    async def __aenter__(self) -> AsyncFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for host in self._hosts.values():
            await host.client.aclose()
        self._hosts.clear()

    def _host(self, url: str) -> _Host:
        """The host's slots and its own small connection pool.

        One pool per host, not one shared pool: httpcore scans every pooled connection on
        each request, which turns quadratic with thousands of idle connections.
        """
        name = (urlsplit(url).hostname or "").lower()
        host = self._hosts.get(name)
        if host is None:
            transport = Transport(
                self._ssl,
                httpx.Limits(
                    max_connections=self.per_host, max_keepalive_connections=self.per_host
                ),
                None if self.allow_private_hosts else GuardedBackend(),
            )
            client = httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(self.timeout, pool=None),
                follow_redirects=False,
                headers=self._headers,
            )
            host = self._hosts[name] = _Host(asyncio.Semaphore(self.per_host), client, transport)
        return host

    def busy_for(self, url: str) -> float:
        """Seconds the oldest request in flight to ``url``'s host has held its slot (0 when
        none is): how long a stalled host has kept its queue waiting."""
        host = self._hosts.get((urlsplit(url).hostname or "").lower())
        if host is None or not host.busy:
            return 0.0
        return asyncio.get_running_loop().time() - min(host.busy.values())

    async def get(
        self,
        url: str,
        validators: Validators | None = None,
        *,
        max_bytes: int = 10_000_000,
        accept: str = "*/*",
        on_start: Callable[[], None] | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally when validators are given); never raises for the network.

        The total timeout covers every hop and the whole body, so a server that trickles a
        byte a second is cut off however patient the read timeout is. It starts, like the
        measured time, when the request gets its slots: waiting in a busy host's queue is no
        fault of the request. ``on_start`` is called then (a request cancelled before it was
        never sent).
        """
        started = time.monotonic()
        headers = {"Accept": accept, "Accept-Encoding": "gzip, deflate"}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        state: dict[str, Any] = {
            "current": url,
            "moved_to": None,
            "started": started,
            "on_start": on_start,
        }
        try:
            return await self._follow(url, headers, state, max_bytes)
        except TimeoutError:
            message = f"took longer than {self.total_timeout:g}s in total"
        except BlockedAddress as exc:
            message = str(exc)
        except (httpx.HTTPError, OSError) as exc:
            message = _describe(exc, self.timeout)
        return _error(url, str(state["current"]), state["started"], message)

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        state: dict[str, Any],
        max_bytes: int,
    ) -> FetchResult:
        current = url
        seen: set[str] = set()
        deadline: float | None = None
        permanent = True  # still on the leading run of 301/308 hops
        for _hop in range(self.max_redirects + 1):
            if not self.allow_private_hosts:
                await asyncio.to_thread(check_host, current)
            seen.add(current)
            host = self._host(current)
            async with host.slot, self._global, _holding(host):
                if deadline is None:
                    deadline = asyncio.get_running_loop().time() + self.total_timeout
                    state["started"] = time.monotonic()
                    if state["on_start"] is not None:
                        state["on_start"]()
                started = state["started"]
                async with asyncio.timeout_at(deadline):
                    request = host.client.build_request("GET", current, headers=headers)
                    response = await host.client.send(request, stream=True)
                try:
                    status = response.status_code
                    if status in REDIRECT_CODES and "location" in response.headers:
                        nxt = urljoin(current, response.headers["location"])
                        if urlsplit(nxt).scheme not in ("http", "https"):
                            return _error(url, current, started, f"redirect to {nxt!r}")
                        if nxt in seen:
                            return _error(
                                url, current, started, f"redirect loop: {current} -> {nxt}"
                            )
                        permanent = permanent and status in PERMANENT_REDIRECTS
                        if permanent:
                            state["moved_to"] = nxt
                        current = state["current"] = nxt
                        async with asyncio.timeout_at(deadline):
                            await _drain(response)
                        continue
                    async with asyncio.timeout_at(deadline):
                        return await self._read(url, current, response, started, max_bytes, state)
                finally:
                    await response.aclose()
        return _error(
            url, current, state["started"], f"too many redirects (more than {self.max_redirects})"
        )

    async def _read(
        self,
        url: str,
        final_url: str,
        response: httpx.Response,
        started: float,
        max_bytes: int,
        state: dict[str, Any],
    ) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        validators = Validators(headers.get("etag"), headers.get("last-modified"))
        common = {
            "url": url,
            "final_url": final_url,
            "status": status,
            "content_type": headers.get("content-type"),
            "validators": validators,
            "headers": headers,
            "moved_to": state["moved_to"],
        }

        def result(**kwargs: object) -> FetchResult:
            return FetchResult(**common, **kwargs, elapsed=time.monotonic() - started)  # type: ignore[arg-type]

        if status == 304:
            await _drain(response)
            return result(not_modified=True)
        if status >= 400:
            await _drain(response)
            reason = response.reason_phrase or ""
            return result(error=f"HTTP {status} {reason}".strip())
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return result(error=f"response too large ({declared} bytes, limit {max_bytes})")
        try:
            inflater = _Inflater(headers.get("content-encoding"), max_bytes)
        except ValueError as exc:
            return result(error=str(exc))
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += inflater.feed(chunk)
            body += inflater.flush()
        except TooLarge:
            return result(error=f"response too large (over {max_bytes} bytes)")
        except zlib.error as exc:
            return result(error=f"cannot decompress {inflater.coding} body: {exc}")
        return result(content=bytes(body))


@contextlib.asynccontextmanager
async def _holding(host: _Host) -> AsyncIterator[None]:
    """Note the request in ``host.busy`` while it holds its slot (see ``busy_for``)."""
    token = object()
    host.busy[token] = asyncio.get_running_loop().time()
    try:
        yield
    finally:
        del host.busy[token]


async def _drain(response: httpx.Response, limit: int = 65_536) -> None:
    """Read a small unwanted body (304, error, redirect) so its connection goes back to the
    pool: closing a half-read response throws the connection away and costs a reconnect."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return
    size = 0
    try:
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                return
    except httpx.HTTPError:
        return


def _error(url: str, final_url: str, started: float, message: str) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=final_url,
        status=None,
        error=message,
        elapsed=time.monotonic() - started,
    )


class Fetcher:
    """:class:`AsyncFetcher` for one-at-a-time callers; a context manager.

    Its event loop runs on a thread of its own, so it works whatever the caller's thread is
    doing (even running an event loop of its own, as Playwright's sync API does).
    """

    def __init__(self, **options: object) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._async = self._run(self._make(options))

    async def _make(self, options: dict[str, object]) -> AsyncFetcher:
        return AsyncFetcher(**options)  # type: ignore[arg-type]

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def timeout(self) -> float:
        return self._async.timeout

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def get(self, url: str, validators: Validators | None = None, **limits: Any) -> FetchResult:
        """GET ``url``: :meth:`AsyncFetcher.get` with the same arguments; never raises for
        the network."""
        return self._run(self._async.get(url, validators, **limits))
