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
    """300 RSS feeds on 127.0.0.1; every feed request is counted (and timed) per cycle."""

    def __init__(self, delay: float = 0.0) -> None:
        self.cycle = 1
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[tuple[int, int, float]] = []  # (cycle, feed, time)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if not (self.path.startswith("/feed/") and self.path.endswith(".xml")):
                    self.send_error(404)
                    return
                feed = int(self.path[6:-4])
                with server.lock:
                    cycle = server.cycle
                    server.requests.append((cycle, feed, time.monotonic()))
                if server.delay:
                    time.sleep(server.delay)
                body = render_feed(feed, cycle)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def counts(self, cycle: int) -> Counter[int]:
        with self.lock:
            return Counter(feed for c, feed, _ in self.requests if c == cycle)

    def times(self, feed: int) -> list[float]:
        with self.lock:
            return [t for _, f, t in self.requests if f == feed]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def render_feed(feed: int, cycle: int) -> bytes:
    """Feed ``feed`` as it stands in ``cycle``: every item so far, PER_CYCLE more each cycle;
    items of one cycle and subject are the same event told by many outlets."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    items = []
    for c in range(1, cycle + 1):
        for n in range(PER_CYCLE):
            key, sentence = SUBJECTS[(feed + n + 3 * c) % len(SUBJECTS)]
            link = f"https://outlet{feed}.example/{c}/{n}"
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


def write_sources(folder: Path, port: int, batch: int, feeds: int = FEEDS) -> Path:
    leans = ["left", "lean-left", "center", "lean-right", "right"]
    parts = ["[settings]\nfeed_size = 20\n", WORKER_SETTINGS + f"batch = {batch}\n"]
    for i in range(feeds):
        parts.append(
            f'[[source]]\nid = "outlet{i}"\nname = "Outlet {i}"\n'
            f'homepage = "https://outlet{i}.example/"\n'
            f'feed = "http://127.0.0.1:{port}/feed/{i}.xml"\nlean = "{leans[i % 5]}"\n'
            "interval = 600\nfull_text = false\n"
        )
    path = folder / "sources.toml"
    path.write_text("\n".join(parts))
    return path
