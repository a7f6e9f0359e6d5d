"""Where a request may connect: the SSRF guard, and the httpx transport that applies it.

:func:`check_host` refuses a URL whose host resolves to a private, loopback or link-local
address before a request is made; :class:`GuardedBackend` checks again on the very addresses
a connection opens to (a DNS answer that changes in between cannot reach an internal
service), racing several addresses as a connect by name would. :class:`Transport` is an httpx
transport over an httpcore connection pool given that backend: public httpx and httpcore
APIs only (the pool takes its network backend as an argument).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from aggregator.errors import BlockedAddress

HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried beside a silent one


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _checked(host: str, ips: list[IP], blocked: Callable[[IP], bool] = _blocked_ip) -> list[IP]:
    """``ips``, or :class:`BlockedAddress` naming the first that is not public."""
    for ip in ips:
        if blocked(ip):
            raise BlockedAddress(
                f"refused to fetch {host} ({ip}): private or loopback address "
                "(use --allow-private-hosts for local sources)"
            )
    return ips


def _ips(infos: list[tuple[Any, ...]]) -> list[IP]:
    """The addresses of a getaddrinfo answer (an IPv6 scope suffix dropped)."""
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_host(url: str) -> None:
    """Raise :class:`BlockedAddress` when any address the URL's host resolves to is not public.

    Resolving here (not trusting the name) is what stops ``http://localtest.me/`` or a DNS
    name pointing at 169.254.169.254 from reaching internal services.
    """
    host = urlsplit(url).hostname
    if not host:
        raise BlockedAddress(f"no host in URL {url!r}")
    try:
        ips = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise OSError(f"DNS lookup failed for {host}: {exc.strerror}") from None
        ips = _ips(infos)
    _checked(host, ips)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens connections only to public addresses, checked on the very addresses it uses.

    :func:`check_host` resolves a name before the request, but the connection would resolve it
    again: a DNS answer that changes in between (DNS rebinding) could reach an internal
    service. Here the name is resolved once, every address is checked, and the connection
    goes to a checked address; TLS still verifies the certificate against the name.
    """

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        blocked: Callable[[IP], bool] = _blocked_ip,
    ) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._blocked = blocked

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ips = [ipaddress.ip_address(host)]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(timeout):  # the lookup is part of connecting
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise OSError(f"DNS lookup failed for {host}: {exc.strerror}") from None
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"DNS lookup for {host} timed out") from None
            ips = _ips(infos)
        addresses = [str(ip) for ip in dict.fromkeys(_checked(host, ips, self._blocked))]
        if not addresses:
            raise httpcore.ConnectError(f"no address for {host}")
        return await self.connect_any(addresses, port, timeout, local_address, socket_options)

    async def connect_any(
        self,
        addresses: Sequence[str],
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The first of ``addresses`` to answer, each tried ``HAPPY_EYEBALLS_DELAY`` after the
        one before it started, or at once when that one failed (RFC 8305, as a connect by name
        would race them): an address that silently drops packets costs a quarter of a second,
        not the whole connect timeout."""

        def connect(address: str) -> asyncio.Task[httpcore.AsyncNetworkStream]:
            return asyncio.ensure_future(
                self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            )

        tasks: list[asyncio.Task[httpcore.AsyncNetworkStream]] = []
        running: set[asyncio.Task[httpcore.AsyncNetworkStream]] = set()
        winner: asyncio.Task[httpcore.AsyncNetworkStream] | None = None
        try:
            for n, address in enumerate(addresses, start=1):
                tasks.append(connect(address))
                running.add(tasks[-1])
                delay = None if n == len(addresses) else HAPPY_EYEBALLS_DELAY
                while running:
                    done, running = await asyncio.wait(
                        running, timeout=delay, return_when=asyncio.FIRST_COMPLETED
                    )
                    winner = next((t for t in done if _connected(t)), None)
                    if winner is not None:
                        return winner.result()
                    if not done:
                        break  # no answer yet: start the next address beside it
            raise tasks[-1].exception() or httpcore.ConnectError("connection failed")
        finally:
            losers = [t for t in tasks if t is not winner]
            for t in losers:
                t.cancel()
            for t, outcome in zip(
                losers, await asyncio.gather(*losers, return_exceptions=True), strict=True
            ):
                if _connected(t) and not isinstance(outcome, BaseException):
                    await outcome.aclose()  # it answered too, after the winner

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress(f"refused to connect to the local socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _connected(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


# httpcore's errors as httpx names them (httpx's own transport maps them the same way): the
# most specific class of an error's own wins.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((_HTTPX_ERRORS[c] for c in type(exc).__mro__ if c in _HTTPX_ERRORS), None)
        if mapped is None:
            raise  # ours (BlockedAddress) or the system's (a failed DNS lookup): as they are
        raise mapped(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    """A response body read from httpcore, its errors named as httpx names them."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _as_httpx_errors():
                await close()


class Transport(httpx.AsyncBaseTransport):
    """httpx's requests sent through an httpcore connection pool that connects through
    ``backend`` (:class:`GuardedBackend` unless private hosts are allowed; None: httpcore's
    own). Only public httpx and httpcore APIs: the pool takes the backend as an argument."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.backend = backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            answer = await self._pool.handle_async_request(sent)
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
