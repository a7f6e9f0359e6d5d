"""`balanced-news worker` on the real PostgreSQL: several worker processes share the sources
through procrastinate, each due feed is requested once per cycle (counted on the loopback
server), ingest is idempotent, every entry ends in one story, one publisher runs at a time, and
a worker killed mid-cycle loses nothing (its sources are polled again once their lease ends).

Skipped, with the reason, where no PostgreSQL answers (tests/conftest.py ``pg_url``); failed
instead under CI=true.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aggregator.cli import main
from tests.conftest import require_worker_mode
from tests.loopback_feeds import FEEDS, PER_CYCLE, FeedServer, write_sources

require_worker_mode()

WORKERS = 3
HOSTS = 30  # the feeds' loopback host addresses (10 feeds each)
PER_HOST = 2  # [settings] per_host, by default


# CPU time that counts as progress in a wait: one second of one worker's (with its parser
# processes) in the last ten, a tenth of a core. An idle worker polling its queue and running
# the 1 s dispatcher uses about a quarter of that (47 ticks in 20 s, measured on a loaded
# machine), so an idle or hung one never reaches it; a starved working one on a loaded 2-core
# machine gets a fifth of a core or more.
WORKING_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CPU_WINDOW = 10.0  # seconds


def cpu_ticks(pid: int) -> int:
    """The CPU time (clock ticks) a process and its live descendants have used so far, read
    from /proc (Linux): 0 where there is none, or once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        utime, stime = stat.rsplit(")", 1)[1].split()[11:13]
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except (OSError, ValueError, IndexError):
        return 0
    return int(utime) + int(stime) + sum(cpu_ticks(child) for child in children)


class Cluster:
    """The worker processes, the database and what the test reads from it."""

    def __init__(
        self, folder: Path, pg_url: str, server: FeedServer, batch: int, settings: str = ""
    ) -> None:
        self.folder = folder
        self.server = server
        self.db = make_url(pg_url).database
        self.connections: Counter[str] = Counter()  # the most seen at once, per worker
        self.env = {
            **os.environ,
            "BALANCED_NEWS_DB": pg_url,
            "BALANCED_NEWS_SOURCES": str(write_sources(folder, server, batch, settings=settings)),
            "BALANCED_NEWS_OUT": str(folder / "feeds"),
            "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS": "1",
        }
        self.engine = create_engine(pg_url)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, n: int) -> None:
        root = Path(__file__).resolve().parents[1]
        for i in range(n):
            log = (self.folder / f"worker{i}.log").open("wb")
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "aggregator.cli", "worker", "--name", f"w{i}"],
                    env=self.env,
                    cwd=root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.engine.dispose()

    def scalar(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar() or 0

    def make_all_due(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE sources SET next_poll_at = now() AT TIME ZONE 'UTC'"))

    def count_connections(self) -> None:
        """Each worker's open PostgreSQL connections now (by their application name)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = :db AND application_name LIKE 'balanced-news worker %' "
                    "GROUP BY application_name"
                ),
                {"db": self.db},
            ).all()
        for name, count in rows:
            self.connections[name] = max(self.connections[name], count)

    def settled(self, entries: int) -> bool:
        """Every entry stored, extracted and grouped, and no task waiting or running (but the
        dispatcher's)."""
        self.count_connections()
        return (
            self.scalar("SELECT count(*) FROM entries") == entries
            and self.scalar("SELECT count(*) FROM entries WHERE story_id IS NULL") == 0
            and self.scalar(
                "SELECT count(*) FROM procrastinate.procrastinate_jobs "
                "WHERE status IN ('todo', 'doing') AND task_name <> 'balanced_news.dispatch'"
            )
            == 0
        )

    def progress(self) -> tuple[int, ...]:
        """What the workers have done so far: what they logged (a start, a release of a dead
        worker's tasks, a dispatch), feeds and pages served, entries stored and grouped, tasks
        ended (the dispatcher's ticks aside, which come whether or not work is done)."""
        with self.server.lock:
            served = len(self.server.requests) + self.server.page_requests
        return (
            sum(log.stat().st_size for log in self.folder.glob("worker*.log")),
            served,
            self.scalar("SELECT count(*) FROM entries"),
            self.scalar("SELECT count(*) FROM entries WHERE story_id IS NOT NULL"),
            self.scalar(
                "SELECT count(*) FROM procrastinate.procrastinate_jobs "
                "WHERE status NOT IN ('todo', 'doing') AND task_name <> 'balanced_news.dispatch'"
            ),
        )

    def cpu_ticks(self) -> list[int]:
        """The CPU time each worker (with its parser processes) has used so far; 0 once gone."""
        return [cpu_ticks(proc.pid) if proc.poll() is None else 0 for proc in self.workers]

    def wait(self, what: Callable[[], bool], seconds: float, why: str, every: float = 0.25) -> None:
        """Wait until `what` holds; fail once the workers have made no progress for `seconds`
        (a hang), or after ten times that in all. A loaded machine slows the work down, and
        a wall-clock budget for all of it failed healthy runs beside a CPU burner; no progress
        at all is what a stuck worker looks like. (A worker waiting out a dead one's 30 s
        heartbeat logs its start and the release, so that wait is not taken for a hang. A
        worker importing its modules or grouping a batch on a starved CPU shows nothing of
        that for a minute, but works: a worker's second of CPU time in the last ten counts as
        progress, a rate an idle or hung worker's polling stays well under.)"""
        start = last_change = last_look = time.monotonic()
        seen = self.progress()
        looks = [(start, self.cpu_ticks())]  # (when, each worker's CPU ticks), a window's worth
        while not what():
            for i, proc in enumerate(self.workers):
                if proc.poll() not in (None, -signal.SIGKILL):
                    log = (self.folder / f"worker{i}.log").read_text()
                    raise AssertionError(f"worker {i} exited {proc.returncode}:\n{log[-3000:]}")
            now = time.monotonic()
            if now - last_look >= 1:  # look at the progress once a second
                last_look = now
                done, used = self.progress(), self.cpu_ticks()
                while len(looks) > 1 and now - looks[1][0] >= CPU_WINDOW:
                    looks.pop(0)  # the oldest look kept is the last one a window ago
                then = looks[0][1]
                working = any(b - a >= WORKING_TICKS for a, b in zip(then, used, strict=False))
                looks.append((now, used))
                if done != seen or working:
                    seen, last_change = done, now
            if now - last_change > seconds or now - start > 10 * seconds:
                logs = (self.folder / "worker0.log").read_text()[-3000:]
                raise AssertionError(
                    f"timed out waiting for {why} ({now - start:.0f} s, the last"
                    f" {now - last_change:.0f} s without progress); worker0:\n{logs}"
                )
            time.sleep(every)


@contextmanager
def cluster(
    tmp_path: Path,
    pg_url: str,
    batch: int,
    delay: float = 0.0,
    hosts: int = HOSTS,
    pages: bool = False,
    settings: str = "",
) -> Iterator[Cluster]:
    server = FeedServer(delay, hosts, pages)
    assert main(["db", "upgrade", "--db", pg_url]) == 0  # and the queue's tables
    c = Cluster(tmp_path, pg_url, server, batch, settings)
    try:
        yield c
    finally:
        c.stop()
        server.close()


def assert_consistent(c: Cluster, entries: int) -> None:
    assert c.scalar("SELECT count(*) FROM entries") == entries
    duplicates = c.scalar(
        "SELECT count(*) FROM (SELECT source_id, ident FROM entries "
        "GROUP BY source_id, ident HAVING count(*) > 1) d"
    )
    assert duplicates == 0
    assert c.scalar("SELECT count(*) FROM entries WHERE story_id IS NULL") == 0
    # every entry's story is a live one (not a merged-away row)
    assert (
        c.scalar(
            "SELECT count(*) FROM entries e JOIN stories s ON s.id = e.story_id "
            "WHERE s.merged_into IS NOT NULL"
        )
        == 0
    )


def publish_runs(c: Cluster) -> list[tuple[datetime, datetime]]:
    with c.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT min(e.at) FILTER (WHERE e.type = 'started'), "
                "max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) "
                "FROM procrastinate.procrastinate_jobs j "
                "JOIN procrastinate.procrastinate_events e ON e.job_id = j.id "
                "WHERE j.task_name = 'balanced_news.publish' GROUP BY j.id"
            )
        ).all()
    return sorted((start, end) for start, end in rows if start is not None)


def test_three_workers_share_the_feeds_three_cycles(tmp_path: Path, pg_url: str) -> None:
    """300 feeds on 30 hosts, each request held 50 ms, in poll tasks of up to 5 sources, so
    that each host's sources make two tasks, which the three workers would gladly run at
    once: the server never sees more than the per-host limit (2) in flight to one host. Each
    worker holds at most its pool's 5 PostgreSQL connections."""
    with cluster(tmp_path, pg_url, batch=5, delay=0.05) as c:
        c.start(WORKERS)
        for cycle in (1, 2, 3):
            c.server.cycle = cycle
            if cycle > 1:
                c.make_all_due()
            expected = FEEDS * PER_CYCLE * cycle
            c.wait(lambda e=expected: c.settled(e), 60, f"cycle {cycle} to settle")
            counts = c.server.counts(cycle)
            assert sorted(counts) == list(range(FEEDS)), f"cycle {cycle}: feeds never requested"
            assert set(counts.values()) == {1}, f"cycle {cycle}: double polls {counts}"
            assert_consistent(c, expected)
        time.sleep(2)  # a few more dispatcher ticks: nothing is due, nothing is requested
        assert sum(c.server.counts(3).values()) == FEEDS
        assert c.scalar("SELECT count(*) FROM polls") == 3 * FEEDS
        # every worker took part, one publisher at a time, and the feed was written
        assert (
            c.scalar("SELECT count(DISTINCT worker_id) FROM procrastinate.procrastinate_jobs")
            >= WORKERS
        )
        runs = publish_runs(c)
        assert len(runs) >= 3
        for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
            assert end is not None and end <= start, "two publishers ran at once"
        assert (tmp_path / "feeds" / "balanced.atom").is_file()
        peak = max(c.server.peak.values())
        print(f"most requests in flight to one host: {peak}; connections {c.connections}")
        assert peak <= PER_HOST, f"per-host limit broken: {c.server.peak}"
        assert peak == PER_HOST  # the limit was reached, so the count can see a breach
        assert len(c.connections) == WORKERS
        assert max(c.connections.values()) <= 5, c.connections
        c.stop()  # SIGTERM: each worker ends its running tasks and exits cleanly
        assert [proc.returncode for proc in c.workers] == [0] * WORKERS


def test_the_wait_fails_on_a_hung_worker(tmp_path: Path, pg_url: str) -> None:
    """The waits above count a worker's CPU time as progress, so a starved worker is not taken
    for a hung one; a hung one must still fail them. A worker stopped (SIGSTOP) mid-cycle, so
    it neither logs, nor requests, nor stores, nor uses CPU, fails the wait once ``seconds``
    pass without progress, well before the overall cap."""
    with cluster(tmp_path, pg_url, batch=1, delay=0.3) as c:
        c.start(1)
        c.wait(lambda: sum(c.server.counts(1).values()) >= 10, 60, "ten feeds polled")
        (worker,) = c.workers
        worker.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(AssertionError, match="without progress"):
                c.wait(lambda: c.settled(FEEDS * PER_CYCLE), 5, "a hung worker")
            assert time.monotonic() - started < 5 * 10, "failed on its hang, not the cap"
        finally:
            worker.send_signal(signal.SIGCONT)


def test_a_killed_worker_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    """One poll task per source (batch 1, one per host at a time): the killed worker held at
    most `concurrency` (8) of them. It polls a quarter alone (so it is surely mid-poll when
    killed), then the other two start and take over."""
    with cluster(tmp_path, pg_url, batch=1, delay=0.3) as c:
        c.start(1)
        c.wait(lambda: sum(c.server.counts(1).values()) >= FEEDS // 4, 60, "a quarter polled")
        c.start(WORKERS - 1)
        victim = c.workers[0]
        victim.kill()  # SIGKILL mid-cycle: up to `concurrency` polls in flight
        killed_at = time.monotonic()
        victim.wait(10)
        expected = FEEDS * PER_CYCLE
        c.wait(lambda: c.settled(expected), 90, "the cycle to settle after the kill")
        counts = c.server.counts(1)
        assert sorted(counts) == list(range(FEEDS))
        again = [feed for feed, n in counts.items() if n > 1]
        assert 1 <= len(again) <= 8, f"polled again: {again}"  # its in-flight polls only
        assert max(counts.values()) == 2
        for feed in again:  # ... polled again once its lease (5 s) ended, not before
            first, second = c.server.times(feed)
            assert second - first >= 5 - 0.5
            assert second >= killed_at
        assert_consistent(c, expected)
        # each source's poll was recorded once: the killed polls never committed
        assert c.scalar("SELECT count(DISTINCT source_id) FROM polls") == FEEDS
        assert c.scalar("SELECT count(*) FROM polls") == FEEDS


def test_worker_refuses_sqlite_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FeedServer()
    sources = write_sources(tmp_path, server, batch=1)
    server.close()
    db = tmp_path / "news.db"
    status = main(["worker", "--sources", str(sources), "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert "needs PostgreSQL" in err and "balanced-news run" in err
    assert not db.exists()  # refused before anything was created


def test_a_worker_killed_in_each_stage_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    """One worker, SIGKILLed while it polls (mid-fetch or mid-write), while it groups and
    rewrites, and while it publishes; a fresh one takes over each time. Nothing committed is
    lost, nothing is stored twice, and the published feed is never a partial file."""
    from lxml import etree

    feed = tmp_path / "feeds" / "balanced.atom"
    with cluster(tmp_path, pg_url, batch=10, delay=0.05) as c:

        def running(task: str) -> bool:
            return bool(
                c.scalar(
                    "SELECT count(*) FROM procrastinate.procrastinate_jobs "
                    f"WHERE status = 'doing' AND task_name = 'balanced_news.{task}'"
                )
            )

        for task in ("poll", "group", "publish"):
            c.start(1)
            c.wait(lambda t=task: running(t), 60, f"a {task} task to run", every=0.02)
            c.workers[-1].kill()
            c.workers[-1].wait(10)
            if feed.exists():  # written whole or not at all
                etree.parse(str(feed))
            if task == "group":  # new entries, so that a group and a publish run again
                c.server.cycle = 2
                c.make_all_due()
        c.start(1)
        expected = FEEDS * PER_CYCLE * 2
        c.wait(lambda: c.settled(expected), 90, "the last worker to finish the work")
        assert_consistent(c, expected)
        assert c.scalar("SELECT count(DISTINCT source_id) FROM polls") == FEEDS
        c.wait(feed.exists, 30, "the feed to be published")
        etree.parse(str(feed))


def test_claims_skip_locked_rows_and_hold_a_lease(pg_url: str) -> None:
    """The store's claim on PostgreSQL: a source another transaction holds is skipped, not
    waited for; a claimed source is not due again until its lease ends; its token changes
    once it is polled."""
    from datetime import UTC, datetime, timedelta

    from aggregator.config import Source
    from aggregator.store import Store

    sources = [
        Source(
            id=f"s{i}",
            name=f"S{i}",
            homepage="https://s.example/",
            feeds=(f"https://s.example/{i}",),
            lean="center",
        )
        for i in range(4)
    ]
    ids = [src.id for src in sources]
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    lease = timedelta(minutes=2)
    with Store.open(pg_url) as store:
        store.sync_sources(sources)
        engine = create_engine(pg_url)
        try:
            with engine.begin() as conn:  # another dispatcher, mid-claim, holds s0 and s1
                conn.execute(text("SELECT id FROM sources WHERE id IN ('s0', 's1') FOR UPDATE"))
                claimed = store.claim_due_sources(ids, now, lease)
                assert sorted(sid for sid, _ in claimed) == ["s2", "s3"]
            assert sorted(sid for sid, _ in store.claim_due_sources(ids, now, lease)) == [
                "s0",
                "s1",
            ]
            assert store.claim_due_sources(ids, now + lease / 2, lease) == []  # leased
            again = store.claim_due_sources(ids, now + lease, lease)  # the lease ended
            assert sorted(sid for sid, _ in again) == ids
            assert all(token == "" for _, token in again)  # never polled
            with engine.begin() as conn:  # a poll records its time: the token moves on
                conn.execute(text("UPDATE sources SET last_poll_at = now() WHERE id = 's3'"))
            tokens = store.poll_tokens(ids)
            assert tokens["s3"] != "" and [tokens[s] for s in ids[:3]] == ["", "", ""]
            assert store.poll_tokens(["gone"]) == {}
        finally:
            engine.dispose()


def test_sigterm_stops_a_worker_within_ten_seconds_ten_times(tmp_path: Path, pg_url: str) -> None:
    """Ten stops, each in the middle of something: five with polls in flight (every feed
    request hangs 60 s), five with an extract in flight (every article page hangs 60 s). Each
    worker exits 0 within 10 s of SIGTERM. Then a worker with nothing hanging finishes the
    work: nothing was lost, nothing is stored twice, every entry has its text and its story."""
    with cluster(tmp_path, pg_url, batch=20, pages=True) as c:
        stops = []
        for run in range(10):
            polling = run % 2 == 0
            c.server.stall = 60.0 if polling else 0.0
            c.server.page_stall = 0.0 if polling else 60.0
            if polling:
                c.make_all_due()
            busy = "a poll in flight" if polling else "an extract in flight"
            with c.server.lock:
                before = (len(c.server.requests), c.server.page_requests)
            c.start(1)

            def in_flight(polling: bool = polling, before: tuple[int, int] = before) -> bool:
                with c.server.lock:  # a request of this worker's is hanging now
                    now = (len(c.server.requests), c.server.page_requests)
                return now[0] > before[0] if polling else now[1] > before[1]

            c.wait(in_flight, 60, busy, every=0.05)
            worker = c.workers[-1]
            worker.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
            stops.append(round(time.monotonic() - sent, 2))
            assert worker.returncode == 0, (run, busy, worker.returncode)
            c.workers.remove(worker)  # stopped, as asked: no longer watched
        print(f"SIGTERM to exit, seconds: {stops}")
        assert max(stops) <= 10, stops
        c.server.stall = c.server.page_stall = 0.0
        c.start(1)
        expected = FEEDS * PER_CYCLE
        c.wait(lambda: c.settled(expected), 120, "the last worker to finish the work")
        assert_consistent(c, expected)
        # every entry's text is its page's (no stop left one with the feed's text instead)
        assert (
            c.scalar("SELECT count(*) FROM entries WHERE text LIKE 'Paragraph 0 of%'") == expected
        )


def _worker_line(tmp_path: Path, db: str, *python: str) -> tuple[int, list[str]]:
    """`balanced-news worker` against ``db`` in a process of its own (``python``: code run
    first); its exit status and its stderr lines."""
    server = FeedServer()
    try:
        sources = write_sources(tmp_path, server, batch=1)
    finally:
        server.close()
    code = "; ".join(
        [*python, "from aggregator.cli import main", "raise SystemExit(main(sys.argv[1:]))"]
    )
    args = ["worker", "--sources", str(sources), "--db", db, "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    return done.returncode, done.stderr.strip().splitlines()


def test_worker_without_the_postgres_extra_says_what_to_install(
    tmp_path: Path, pg_url: str
) -> None:
    """procrastinate not importable (a None entry in sys.modules is how Python marks a module
    that must not be imported: the import machinery itself raises ImportError)."""
    status, lines = _worker_line(tmp_path, pg_url, "sys.modules['procrastinate'] = None")
    assert status == 2
    assert len(lines) == 1, lines
    assert "pip install 'balanced-news[postgres]'" in lines[0]


def test_worker_on_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    from tests.conftest import free_port

    db = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/news"
    status, lines = _worker_line(tmp_path, db)
    assert status == 1
    assert len(lines) == 1, lines
    assert (
        lines[0].startswith("balanced-news: database postgresql+psycopg://")
        and "refused" in lines[0]
    )


def test_worker_on_a_read_only_database_says_so_in_one_line(tmp_path: Path, pg_url: str) -> None:
    assert main(["db", "upgrade", "--db", pg_url]) == 0
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            name = make_url(pg_url).database
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    finally:
        engine.dispose()
    status, lines = _worker_line(tmp_path, pg_url)
    assert status == 1
    assert len(lines) == 1, lines
    assert "read-only transaction" in lines[0]


def test_pool_size_is_validated_at_load(tmp_path: Path) -> None:
    from aggregator.config import ConfigError, parse_workers

    assert parse_workers("").pool_size == 5
    assert parse_workers("[workers]\npool_size = 3\n").pool_size == 3
    for bad in ("2", "0", '"five"'):
        with pytest.raises(ConfigError, match=r"\[workers\]") as caught:
            parse_workers(f"[workers]\npool_size = {bad}\n")
        assert len(str(caught.value).splitlines()) == 1


def test_a_change_in_failing_sources_is_published_without_new_entries(
    tmp_path: Path, pg_url: str
) -> None:
    """One host's ten feeds start failing, then recover; nothing new arrives meanwhile. The
    feed's status line follows each change within a dispatcher period (1 s here) or so."""
    feed = tmp_path / "feeds" / "balanced.atom"
    with cluster(tmp_path, pg_url, batch=20) as c:
        c.start(1)
        expected = FEEDS * PER_CYCLE
        c.wait(lambda: c.settled(expected) and feed.exists(), 90, "the first cycle")
        assert "are down" not in feed.read_text()
        broken = "127.0.1.1"
        ids = ", ".join(f"'outlet{i}'" for i in range(FEEDS) if i % HOSTS == 0)

        def due_again() -> float:
            with c.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE sources SET next_poll_at = now() AT TIME ZONE 'UTC' "
                        f"WHERE id IN ({ids})"
                    )
                )
            return time.monotonic()

        c.server.failing = {broken}
        since = due_again()
        line = f"{FEEDS // HOSTS} of {FEEDS} sources are down"
        c.wait(lambda: line in feed.read_text(), 15, "the status line", every=0.05)
        print(f"failing published after {time.monotonic() - since:.1f} s")
        c.server.failing = set()
        since = due_again()
        c.wait(lambda: "are down" not in feed.read_text(), 15, "the recovery", every=0.05)
        print(f"recovery published after {time.monotonic() - since:.1f} s")
        assert c.scalar("SELECT count(*) FROM entries") == expected  # nothing new came
