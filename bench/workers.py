"""Workers at scale: a cold poll cycle by 1, 2 and 4 `balanced-news worker` processes on
PostgreSQL, beside the single-process SQLite path (`Pipeline.poll`, what `run` does).

bench/poll.py's loopback publisher (its own process) serves N feeds of 30 entries over 100
loopback hosts, each response delayed by --latency. Each run starts from an empty database:

- single (SQLite): one process polls every feed (`Pipeline.poll()`), as `run` does;
- workers (PostgreSQL): N processes `balanced-news worker --queues poll` start and register,
  the sources are made due, and the clock runs until every source's poll is stored. Only the
  poll queue is served, so the cycle is fetch + parse + store, as in the single run.
  "pinned" runs hold worker k to core k (taskset): the scale-out target is 2 pinned workers
  at >= 1.7x the throughput of 1 pinned worker.

Printed per run: seconds, feeds/s, CPU seconds per 1,000 feeds (the pollers and their parser
processes; PostgreSQL's own CPU beside it), peak RSS (sum over the pollers and their parser
processes), and for worker runs the cores the loopback publisher took during the cycle and
the cores taken by every other process on the machine (other users of a shared machine):
on 2 cores, both come out of what the workers could have had.

    python bench/workers.py                      # 2,000 feeds, 50 ms: all runs (~5 minutes)
    python bench/workers.py --feeds 500 --runs single,1,2
    python bench/workers.py --runs 1p,2p --baseline b10380c   # beside another revision

Needs a PostgreSQL server (--pg, default $BALANCED_NEWS_TEST_PG or
postgresql+psycopg://postgres@127.0.0.1:5432/test: a database is created per run and dropped).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from poll import free_port, host_of, serve  # noqa: E402 - bench/poll.py's publisher
from revision import checked_out  # noqa: E402

PG = os.environ.get("BALANCED_NEWS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TICK = os.sysconf("SC_CLK_TCK")


# --- process accounting (Linux /proc) -----------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the worker, its forkserver, its parser processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def peak_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def machine_busy() -> float:
    """CPU seconds spent by every process on the machine so far (/proc/stat): beside ours,
    what the loopback publisher and anyone else sharing the cores took."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


# --- the runs ------------------------------------------------------------------------------------


def sources_toml(port: int, feeds: int, concurrency: int) -> str:
    parts = [
        "[workers]",
        f"concurrency = {concurrency}",
        "dispatch_seconds = 1",
        "",
    ]
    for i in range(feeds):
        parts += [
            "[[source]]",
            f'id = "feed{i}"',
            f'name = "Outlet {i}"',
            f'homepage = "http://{host_of(i)}:{port}/"',
            f'feed = "http://{host_of(i)}:{port}/feed/{i}.xml"',
            'lean = "center"',
            "interval = 600",
            "full_text = false",
            "",
        ]
    return "\n".join(parts)


def run_single(port: int, feeds: int, folder: Path) -> dict[str, float]:
    """The single-process path in a child process, so its RSS and CPU are its own."""
    script = f"""
import os, sys, time, json
sys.path.insert(0, {str(ROOT)!r})
from aggregator.config import load_config
from aggregator.pipeline import Pipeline
config = load_config({str(folder / "sources.toml")!r}, "sqlite:///{folder / "single.db"}",
                     {str(folder / "feeds")!r}, allow_private_hosts=True)
pipe = Pipeline(config)
pipe.parsers.start()  # workers started before the clock
pids = [os.getpid(), *pipe.parsers.pids()]
def cpu():
    total = 0.0
    for pid in pids:
        f = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
        total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return total
c0, t0 = cpu(), time.perf_counter()
results = pipe.poll()
seconds, used = time.perf_counter() - t0, cpu() - c0
rss = 0
for pid in pids:
    for line in open(f"/proc/{{pid}}/status"):
        if line.startswith("VmHWM:"):
            rss += int(line.split()[1]) * 1024
errors = sum(1 for r in results if r.outcome == "error")
print(json.dumps({{"seconds": seconds, "cpu": used, "rss": rss, "errors": errors}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=folder
    )
    import json

    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["pg_cpu"] = 0.0
    return row


def run_workers(
    port: int,
    feeds: int,
    folder: Path,
    n: int,
    pinned: bool,
    concurrency: int,
    server: int,
    root: Path = ROOT,
) -> dict[str, float]:
    """A cold poll cycle by ``n`` workers of the tree at ``root`` (this one, or --baseline's)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    name = f"bn_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    env = {
        **os.environ,
        "BALANCED_NEWS_DB": url,
        "BALANCED_NEWS_SOURCES": str(folder / "sources.toml"),
        "BALANCED_NEWS_OUT": str(folder / "feeds"),
        "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS": "1",
    }
    cli = [sys.executable, "-m", "aggregator.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=root)
        # The sources stored and not due, so that workers start idle and the clock starts
        # when every one of them is ready.
        script = (
            "from aggregator.config import load_config; from aggregator.store import Store\n"
            f"c = load_config({str(folder / 'sources.toml')!r})\n"
            f"s = Store.open({url!r}); s.sync_sources(c.sources); s.close()\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, cwd=root)
        far = "now() AT TIME ZONE 'UTC' + interval '1 day'"
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE sources SET next_poll_at = {far}"))
        for k in range(n):
            prefix = ["taskset", "-c", str(k % (os.cpu_count() or 1))] if pinned else []
            log = (folder / f"worker{k}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [*prefix, *cli, "worker", "--queues", "poll", "--name", f"w{k}"],
                    env=env,
                    cwd=root,  # `python -m` imports the package from its working directory
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as conn:
                ready = conn.execute(
                    text("SELECT count(*) FROM procrastinate.procrastinate_workers")
                ).scalar()
            if ready == n:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers did not start: see {folder}/worker0.log")
            time.sleep(0.2)
        time.sleep(1.0)  # their parser processes up
        pids = [pid for p in procs for pid in descendants(p.pid)]
        pg = postgres_pids()
        c0, g0, s0, m0 = cpu_seconds(pids), cpu_seconds(pg), cpu_seconds([server]), machine_busy()
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("UPDATE sources SET next_poll_at = NULL"))
        while True:
            with engine.connect() as conn:
                polled = conn.execute(
                    text("SELECT count(*) FROM sources WHERE last_poll_at IS NOT NULL")
                ).scalar()
            if polled == feeds:
                break
            if time.monotonic() - t0 > 900:
                raise SystemExit("the cycle did not end in 15 minutes")
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        pids = [pid for p in procs for pid in descendants(p.pid)]
        used, pg_used, rss = cpu_seconds(pids) - c0, cpu_seconds(pg) - g0, peak_rss(pids)
        served, busy = cpu_seconds([server]) - s0, machine_busy() - m0
        with engine.connect() as conn:
            errors = conn.execute(
                text("SELECT count(*) FROM polls WHERE outcome = 'error'")
            ).scalar()
            doubles = conn.execute(
                text("SELECT count(*) - count(DISTINCT source_id) FROM polls")
            ).scalar()
        return {
            "seconds": seconds,
            "cpu": used,
            "pg_cpu": pg_used,
            "rss": rss,
            "errors": errors or 0,
            "doubles": doubles or 0,
            # cores taken during the cycle by the publisher, and by processes not of this run
            "server_cores": served / seconds,
            "other_cores": max(0.0, busy - used - pg_used - served) / seconds,
        }
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per response")
    parser.add_argument("--concurrency", type=int, default=16, help="tasks per worker")
    parser.add_argument(
        "--runs",
        default="single,1,2,4,1p,2p",
        help="comma-separated: single (SQLite, one process), N workers, Np N workers pinned",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the worker runs on this git revision, each beside this tree's",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        trees = {"": ROOT}
        if args.baseline:
            trees[args.baseline] = stack.enter_context(checked_out(args.baseline))
        return run_all(args, trees)


def run_all(args: argparse.Namespace, trees: dict[str, Path]) -> int:
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(port, args.feeds, args.latency, ready), daemon=True
    )
    server.start()
    ready.wait(30)
    print(
        f"{args.feeds} feeds x 30 entries, {args.latency * 1000:.0f} ms latency, 100 hosts, "
        f"{args.concurrency} tasks per worker; {os.cpu_count()} cores\n"
    )
    print(
        f"{'run':<26} {'seconds':>8} {'feeds/s':>8} {'CPU s/1k':>9} {'+PG CPU':>8} "
        f"{'peak RSS':>9} {'errors':>6} {'double':>6} {'server':>6} {'others':>6}"
    )
    rates: dict[str, float] = {}
    for run in args.runs.split(","):
        for rev, root in trees.items() if run != "single" else [("", ROOT)]:
            folder = Path(tempfile.mkdtemp(prefix="bn-bench-workers-"))
            (folder / "sources.toml").write_text(sources_toml(port, args.feeds, args.concurrency))
            if run == "single":
                label = "single process (SQLite)"
                row = run_single(port, args.feeds, folder)
            else:
                n, pinned = int(run.rstrip("p")), run.endswith("p")
                label = f"{n} worker{'s' if n > 1 else ''} (PG){' pinned' if pinned else ''}"
                label += f" {rev}" if rev else ""
                row = run_workers(
                    port, args.feeds, folder, n, pinned, args.concurrency, server.pid, root
                )
            rates[run + rev] = args.feeds / row["seconds"]
            print(
                f"{label:<26} {row['seconds']:>8.1f} {rates[run + rev]:>8.1f} "
                f"{1000 * row['cpu'] / args.feeds:>9.1f} "
                f"{1000 * row['pg_cpu'] / args.feeds:>8.1f} "
                f"{row['rss'] / 2**20:>7.0f}MB {row['errors']:>6.0f} "
                f"{row.get('doubles', 0):>6.0f} "
                f"{row.get('server_cores', 0):>6.2f} {row.get('other_cores', 0):>6.2f}",
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)
    print()
    for rev in trees:
        name = rev or "this tree"
        if "1p" + rev in rates and "2p" + rev in rates:
            ratio = rates["2p" + rev] / rates["1p" + rev]
            print(f"{name}: 2 pinned workers / 1 pinned worker: {ratio:.2f}x (target 1.7x)")
        if "1" + rev in rates and "2" + rev in rates:
            print(f"{name}: 2 workers / 1 worker: {rates['2' + rev] / rates['1' + rev]:.2f}x")
    if "1" in rates and "single" in rates:
        print(f"1 worker / single process: {rates['1'] / rates['single']:.2f}x")
    server.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
