"""A loopback publisher of many feeds whose every request is counted, for the tests that run
whole processes against it (tests/test_worker.py, tests/test_crash.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEEDS = 300
PER_CYCLE = 2  # new items each feed gains per cycle (the older ones stay in the feed)
SUBJECTS = [
    ("harbor", "The city council approved the harbor district plan after a long debate"),
    ("water", "State regulators ordered new cuts to farm water allocations this summer"),
    ("rates", "The central bank raised interest rates by a quarter point on Wednesday"),
    ("senate", "The Senate passed the infrastructure bill with votes from both parties"),
    ("storm", "A winter storm closed highways and schools across the northern plains"),
    ("vaccine", "Health officials recommended an updated vaccine for older adults"),
    ("strike", "Dock workers ended their strike after a new contract was signed"),
    ("wildfire", "Firefighters contained most of the wildfire near the mountain towns"),
]
WORKER_SETTINGS = """
[workers]
concurrency = 8
lease_seconds = 5
dispatch_seconds = 1
heartbeat_seconds = 1
stalled_seconds = 3
keep_jobs = true
"""


class FeedServer:
    """300 RSS feeds on ``hosts`` loopback addresses (127.0.0.1 alone by default, else
    127.0.1.1, 127.0.1.2, ...: feed i on host i % hosts, each its own port); every feed
    request is counted (and timed) per cycle, and the requests in flight to each host
    address are counted as they come: ``peak`` holds the most seen at once per host.

    ``pages``: items link to article pages on the server (else to outlet addresses that are
    never fetched). Knobs a test may turn at any time: ``stall`` (seconds every feed request
    hangs), ``page_stall`` (the same for pages), ``failing`` (host addresses answering 500)."""

    def __init__(self, delay: float = 0.0, hosts: int = 1, pages: bool = False) -> None:
        self.cycle = 1
        self.delay = delay
        self.pages = pages
        self.stall = 0.0
        self.page_stall = 0.0
        self.failing: set[str] = set()
        self.page_requests = 0
        self.lock = threading.Lock()
        self.requests: list[tuple[int, int, float]] = []  # (cycle, feed, time)
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                host = self.server.server_address[0]
                if self.path.startswith("/page/"):
                    with server.lock:
                        server.page_requests += 1
                        server.in_flight["pages"] += 1
                    try:
                        time.sleep(server.page_stall)
                        self._send(200, "text/html", render_page(self.path))
                    finally:
                        with server.lock:
                            server.in_flight["pages"] -= 1
                    return
                if not (self.path.startswith("/feed/") and self.path.endswith(".xml")):
                    self.send_error(404)
                    return
                feed = int(self.path[6:-4])
                with server.lock:
                    cycle = server.cycle
                    server.requests.append((cycle, feed, time.monotonic()))
                    server.in_flight[host] += 1
                    server.peak[host] = max(server.peak[host], server.in_flight[host])
                try:
                    time.sleep(server.delay + server.stall)
                finally:
                    # counted out before the answer leaves: the client cannot have sent its
                    # next request yet, so an overlap counted here was real at the client
                    with server.lock:
                        server.in_flight[host] -= 1
                if host in server.failing:
                    self._send(500, "text/plain", b"down")
                    return
                base = f"http://{host}:{self.server.server_address[1]}" if server.pages else None
                self._send(200, "application/rss+xml", render_feed(feed, cycle, base))

            def _send(self, status: int, kind: str, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up on a stalled answer (a stopped worker)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        addresses = ["127.0.0.1"] if hosts == 1 else [f"127.0.1.{1 + k}" for k in range(hosts)]
        self.servers: list[ThreadingHTTPServer] = []
        for address in addresses:
            httpd = ThreadingHTTPServer((address, 0), Handler)
            httpd.daemon_threads = True
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            self.servers.append(httpd)
        self.port = self.servers[0].server_address[1]

    def feed_url(self, feed: int) -> str:
        address, port = self.servers[feed % len(self.servers)].server_address[:2]
        return f"http://{address}:{port}/feed/{feed}.xml"

    def counts(self, cycle: int) -> Counter[int]:
        with self.lock:
            return Counter(feed for c, feed, _ in self.requests if c == cycle)

    def times(self, feed: int) -> list[float]:
        with self.lock:
            return [t for _, f, t in self.requests if f == feed]

    def close(self) -> None:
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()


def render_page(path: str) -> bytes:
    """An article page (for ``pages``): a few paragraphs trafilatura takes as the body."""
    body = "".join(
        f"<p>Paragraph {k} of the report at {path}: officials described the decision, its "
        "costs and its timetable at length, and residents asked questions about it.</p>"
        for k in range(6)
    )
    head = f"<html><head><title>{path}</title></head>"
    return f"{head}<body><article>{body}</article></body></html>".encode()


def render_feed(feed: int, cycle: int, pages: str | None = None) -> bytes:
    """Feed ``feed`` as it stands in ``cycle``: every item so far, PER_CYCLE more each cycle;
    items of one cycle and subject are the same event told by many outlets. ``pages``: the
    server's address, which the items link to (else to outlet addresses)."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    items = []
    for c in range(1, cycle + 1):
        for n in range(PER_CYCLE):
            key, sentence = SUBJECTS[(feed + n + 3 * c) % len(SUBJECTS)]
            link = f"https://outlet{feed}.example/{c}/{n}"
            if pages:
                link = f"{pages}/page/{feed}/{c}/{n}.html"
            when = format_datetime(base + timedelta(days=c, minutes=feed % 60), usegmt=True)
            items.append(
                f"<item><title>{sentence.split(' after ')[0]} ({key}, day {c})</title>"
                f"<link>{link}</link><guid>{link}</guid><pubDate>{when}</pubDate>"
                f"<description>{sentence}, outlet {feed} reported on day {c}. Officials said "
                f"the decision on the {key} matter would take effect within weeks.</description>"
                "</item>"
            )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Outlet {feed}</title><link>https://outlet{feed}.example/</link>"
        f"<description>Outlet {feed}</description>{''.join(items)}</channel></rss>"
    ).encode()


def write_sources(
    folder: Path, server: FeedServer, batch: int, feeds: int = FEEDS, settings: str = ""
) -> Path:
    """A sources file of ``feeds`` outlets on ``server``, with the test workers' settings,
    ``batch`` and any more ``[workers]`` lines."""
    leans = ["left", "lean-left", "center", "lean-right", "right"]
    pace = "page_delay = 0\n" if server.pages else ""  # pages come quickly in tests
    parts = [f"[settings]\nfeed_size = 20\n{pace}", f"{WORKER_SETTINGS}batch = {batch}\n{settings}"]
    for i in range(feeds):
        parts.append(
            f'[[source]]\nid = "outlet{i}"\nname = "Outlet {i}"\n'
            f'homepage = "https://outlet{i}.example/"\n'
            f'feed = "{server.feed_url(i)}"\nlean = "{leans[i % 5]}"\n'
            f"interval = 600\nfull_text = {'true' if server.pages else 'false'}\n"
        )
    path = folder / "sources.toml"
    path.write_text("\n".join(parts))
    return path
