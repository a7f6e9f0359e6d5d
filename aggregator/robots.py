"""Politeness for article pages: robots.txt (protego), cached per host, and a per-host delay.

Feeds are published to be polled; article pages are not always meant for robots, so each
page fetch first asks the host's robots.txt (fetched once per host per run) and waits out the
host's delay (ours, or the site's Crawl-delay when longer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from protego import Protego

from aggregator.models import FetchResult

ROBOT_NAME = "balanced-news"  # the product token robots.txt rules name
MAX_CRAWL_DELAY = 60.0  # seconds: a site asking for more is asked at this pace


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Robots:
    """robots.txt answers per host. ``fetch`` gets a URL and returns a :class:`FetchResult`.

    RFC 9309: a 4xx robots.txt (none there) allows everything; a server error or no answer
    at all means "assume everything is disallowed" until the next run.
    """

    def __init__(self, fetch: Callable[[str], FetchResult], agent: str = ROBOT_NAME) -> None:
        self._fetch = fetch
        self.agent = agent
        self._rules: dict[str, Protego | bool] = {}

    def _for(self, url: str) -> Protego | bool:
        host = host_of(url)
        if host not in self._rules:
            res = self._fetch(f"{host}/robots.txt")
            if res.status is not None and 400 <= res.status < 500:
                rules: Protego | bool = True
            elif res.error or res.status is None:
                rules = False
            else:
                rules = Protego.parse(res.content.decode("utf-8", errors="replace"))
            self._rules[host] = rules
        return self._rules[host]

    def allowed(self, url: str) -> bool:
        rules = self._for(url)
        if isinstance(rules, bool):
            return rules
        return bool(rules.can_fetch(url, self.agent))

    def crawl_delay(self, url: str) -> float:
        rules = self._for(url)
        if isinstance(rules, bool):
            return 0.0
        delay = rules.crawl_delay(self.agent)
        return min(float(delay), MAX_CRAWL_DELAY) if delay else 0.0


class HostPacer:
    """At most one request per host every ``delay`` seconds; waiting on ``stop`` so a
    shutdown is never held up by a polite pause."""

    def __init__(self, delay: float, stop: threading.Event | None = None) -> None:
        self.delay = delay
        self.stop = stop or threading.Event()
        self._last: dict[str, float] = {}

    def wait(self, url: str, delay: float | None = None) -> None:
        host = host_of(url)
        pause = max(self.delay, delay or 0.0)
        last = self._last.get(host)
        if last is not None:
            remaining = last + pause - time.monotonic()
            if remaining > 0:
                self.stop.wait(remaining)
        self._last[host] = time.monotonic()
