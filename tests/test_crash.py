"""SIGKILL of the single-process path (`balanced-news run --once` on SQLite) mid-fetch,
mid-extract, mid-group, mid-rewrite and as publishing starts: the next run finishes the work,
nothing committed is lost, no entry is stored twice, and the published feed is never a
partial file. (The workers' kill tests, on PostgreSQL: tests/test_worker.py.)

The process runs on a pseudo-terminal so that its progress lines (``[group] 40/200 ...``)
say which stage it is in; it is killed the moment the wanted line shows.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from lxml import etree
from sqlalchemy import create_engine, text

from tests.loopback_feeds import PER_CYCLE, FeedServer, write_sources

FEEDS = 100
ROOT = Path(__file__).resolve().parents[1]


def run_once(env: dict[str, str], kill_at: re.Pattern[bytes] | None) -> tuple[int, bytes]:
    """`run --once` on a pseudo-terminal; SIGKILLed when its output matches ``kill_at``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "run", "--once"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"run --once did not end: {seen[-2000:]!r}"
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):  # the terminal closed with the process
                    seen += os.read(master, 65536)
                if kill_at is not None and kill_at.search(seen):
                    proc.kill()
                    break
        return proc.wait(30), seen
    finally:
        os.close(master)


def test_run_once_killed_in_each_stage_loses_nothing(tmp_path: Path) -> None:
    server = FeedServer(delay=0.02)
    db = tmp_path / "news.db"
    feed = tmp_path / "feeds" / "balanced.atom"
    env = {
        **os.environ,
        "BALANCED_NEWS_DB": f"sqlite:///{db}",
        "BALANCED_NEWS_SOURCES": str(write_sources(tmp_path, server.port, 1, FEEDS)),
        "BALANCED_NEWS_OUT": str(tmp_path / "feeds"),
        "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS": "1",
    }
    stages = {
        "fetch": rb"\[fetch\] 40/",
        "extract": rb"\[extract\] 50/",
        "group": rb"\[group\] 50/",
        "rewrite": rb"\[rewrite\] 3/",
        "publish": rb"\[rewrite\] (\d+)/\1 ",  # the rewrite's last line: publishing starts
    }
    try:
        for stage, pattern in stages.items():
            if stage == "rewrite":  # new entries: the next runs group, rewrite, publish again
                server.cycle = 2
            status, seen = run_once(env, re.compile(pattern))
            assert status == -9, f"{stage}: the run ended before it was killed: {seen[-1500:]!r}"
            if feed.exists():
                etree.parse(str(feed))  # the old feed or the new one, never half of one
        status, seen = run_once(env, None)
        assert status == 0, seen[-2000:]
    finally:
        server.close()
    expected = FEEDS * PER_CYCLE * 2
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:

        def count(sql: str) -> int:
            return conn.execute(text(sql)).scalar() or 0

        assert count("SELECT count(*) FROM entries") == expected
        assert count("SELECT count(*) FROM entries WHERE story_id IS NULL") == 0
        assert (
            count(
                "SELECT count(*) FROM (SELECT source_id, ident FROM entries "
                "GROUP BY source_id, ident HAVING count(*) > 1)"
            )
            == 0
        )
        assert (
            count(
                "SELECT count(*) FROM entries e JOIN stories s ON s.id = e.story_id "
                "WHERE s.merged_into IS NOT NULL"
            )
            == 0
        )
        # every story the last run rewrote is current: none waits for a rewrite
        assert count("SELECT count(*) FROM stories WHERE rewrite_json IS NULL") == 0
    engine.dispose()
    etree.parse(str(feed))
