"""HTTP fetching: conditional GET, limits, redirects and the SSRF guard.

Every failure comes back as a :class:`FetchResult` with a one-line ``error`` rather than an
exception, so one bad server never stops the others. Redirects are followed by hand so that
each hop passes the same address check as the first request.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import httpx

from aggregator import __version__
from aggregator.models import FetchResult, Validators

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class BlockedAddress(Exception):
    """The URL points at an address we refuse to fetch (loopback, private, link-local...)."""


def user_agent(site_url: str) -> str:
    """A descriptive User-Agent: publishers can see who polls them and where to complain."""
    return f"balanced-news/{__version__} (+{site_url}; feed aggregator)"


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
        ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in ips:
        if _blocked_ip(ip):
            raise BlockedAddress(
                f"refused to fetch {host} ({ip}): private or loopback address "
                "(use --allow-private-hosts for local sources)"
            )


def _describe(exc: Exception, timeout: float) -> str:
    """One line for the operator, naming the cause rather than the exception class."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timed out after {timeout:g}s"
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


class Fetcher:
    """A shared HTTP client with the project's limits; use as a context manager."""

    def __init__(
        self,
        *,
        timeout: float = 20.0,
        max_redirects: int = 5,
        allow_private_hosts: bool = False,
        agent: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.total_timeout = timeout * 3
        self.max_redirects = max_redirects
        self.allow_private_hosts = allow_private_hosts
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": agent or user_agent("https://example.invalid/")},
            transport=transport,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        validators: Validators | None = None,
        *,
        max_bytes: int = 10_000_000,
        accept: str = "*/*",
    ) -> FetchResult:
        """GET ``url`` (conditionally when validators are given); never raises for the network."""
        started = time.monotonic()
        headers = {"Accept": accept, "Accept-Encoding": "gzip, deflate"}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        current = url
        seen: set[str] = set()
        try:
            for _hop in range(self.max_redirects + 1):
                if not self.allow_private_hosts:
                    check_host(current)
                seen.add(current)
                with self._client.stream("GET", current, headers=headers) as response:
                    if response.status_code in REDIRECT_CODES and "location" in response.headers:
                        nxt = urljoin(current, response.headers["location"])
                        if urlsplit(nxt).scheme not in ("http", "https"):
                            return self._error(url, current, started, f"redirect to {nxt!r}")
                        if nxt in seen:
                            return self._error(url, current, started, f"redirect loop at {nxt}")
                        current = nxt
                        continue
                    return self._read(url, current, response, started, max_bytes)
            return self._error(
                url, current, started, f"too many redirects (more than {self.max_redirects})"
            )
        except BlockedAddress as exc:
            return self._error(url, current, started, str(exc))
        except (httpx.HTTPError, OSError) as exc:
            return self._error(url, current, started, _describe(exc, self.timeout))

    def _read(
        self,
        url: str,
        final_url: str,
        response: httpx.Response,
        started: float,
        max_bytes: int,
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
        }
        if status == 304:
            return FetchResult(**common, not_modified=True, elapsed=time.monotonic() - started)
        if status >= 400:
            reason = response.reason_phrase or ""
            return FetchResult(
                **common,
                error=f"HTTP {status} {reason}".strip(),
                elapsed=time.monotonic() - started,
            )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return FetchResult(
                **common,
                error=f"response too large ({declared} bytes, limit {max_bytes})",
                elapsed=time.monotonic() - started,
            )
        body = bytearray()
        deadline = started + self.total_timeout
        # iter_bytes yields decompressed bytes, so the cap also stops a gzip bomb.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                return FetchResult(
                    **common,
                    error=f"response too large (over {max_bytes} bytes)",
                    elapsed=time.monotonic() - started,
                )
            if time.monotonic() > deadline:
                return FetchResult(
                    **common,
                    error=f"took longer than {self.total_timeout:g}s in total",
                    elapsed=time.monotonic() - started,
                )
        return FetchResult(**common, content=bytes(body), elapsed=time.monotonic() - started)

    @staticmethod
    def _error(url: str, final_url: str, started: float, message: str) -> FetchResult:
        return FetchResult(
            url=url,
            final_url=final_url,
            status=None,
            error=message,
            elapsed=time.monotonic() - started,
        )
