"""Polling speed at scale: balanced-news against the `reader` library, side by side.

A loopback server (its own process, asyncio, so a response's latency never blocks another)
publishes N feeds of 30 entries spread over 100 loopback hosts (127.0.0.2, 127.0.0.3, ...),
each response delayed by --latency. Each engine, in its own process, runs four cycles:

- cold: everything new (an empty database);
- warm: nothing changed (conditional GETs: 304s);
- mixed: 10% of the feeds changed (one new entry each);
- stalled: warm again, but one host (127.0.0.2) sits 3 s on every request. balanced-news
  is timed as a cycle is held (`Pipeline.start_poll(...).settle()`: the stalled host's sources
  go on in the background); printed too is when every *other* host's feeds were done.

Printed per cycle: seconds, CPU seconds of the engine's process tree (less swayed by other
load on the machine than the seconds), feeds per second, the ratio best reader / this, and
the network floor N x latency / concurrency; per engine, the peak memory of its whole
process tree (the poller and its parser workers, sampled every 0.1 s from outside) as
summed PSS (shared pages counted once: the figure to compare) and summed RSS. reader runs
at 16, 32 and 64 workers (the test is latency-bound: more workers is not always slower) and
the ratios use the count with the least total time, named in the output. --baseline REV
runs balanced-news from git revision REV beside this tree in the same run
(bench/revision.py), e.g. --baseline b10380c. --concurrency takes a list of global limits:
balanced-news runs once per limit.

    python bench/poll.py                   # 1,000 feeds, 50 ms, both engines (a few minutes)
    python bench/poll.py --feeds 200       # a quick run
    python bench/poll.py --no-reader       # balanced-news only
    python bench/poll.py --baseline b10380c     # with the figures of that revision beside

Where the CPU goes: py-spy record --subprocesses --format raw -o prof.txt -- python
bench/poll.py --no-reader. `reader` and py-spy come from the optional extra: pip install -e
'.[bench]'. The feeds are generated; no data set is involved. Figures are printed, never
asserted: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from revision import checked_out

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = 30
HOSTS = 100
CONCURRENCY = 32
READER_WORKERS = (16, 32, 64)
CYCLES = ("cold", "warm", "mixed", "stalled")
STALL = 3.0  # seconds the stalled host (127.0.0.2) sits on each request in the last cycle
STALLED_HOST = "127.0.0.2"


# --- the loopback publisher -------------------------------------------------------------------


def host_of(i: int) -> str:
    return f"127.0.0.{2 + i % HOSTS}"


def render_feed(i: int, version: int) -> bytes:
    """Feed ``i`` at ``version``: 30 entries, one newer entry per version, realistic HTML."""
    base = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i)
    items = []
    for n in range(version + ENTRIES - 1, version - 1, -1):
        when = format_datetime(base + timedelta(hours=n), usegmt=True)
        link = f"https://outlet{i % HOSTS}.example/news/{i}/{n}"
        items.append(
            f"<item><title>Outlet {i} story {n}: council weighs plan for harbor district</title>"
            f"<link>{link}</link><guid isPermaLink='true'>{link}</guid>"
            f"<pubDate>{when}</pubDate><author>desk@outlet{i}.example (News Desk)</author>"
            f"<category>Local</category>"
            f"<description>&lt;p&gt;The council met on &lt;b&gt;Tuesday&lt;/b&gt; to weigh a plan "
            f"for the harbor district, story {n} of feed {i}. &lt;a href='/news/{n}'&gt;More"
            f"&lt;/a&gt; &lt;img src='/img/{n}.jpg' alt=''&gt;&lt;/p&gt;&lt;p&gt;Residents "
            f"asked questions about parking, ferries and the budget.&lt;/p&gt;</description>"
            f"</item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Outlet {i}</title><link>https://outlet{i % HOSTS}.example/</link>"
        f"<description>Bench feed {i}</description>{''.join(items)}</channel></rss>"
    ).encode()


def serve(port: int, feeds: int, latency: float, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    """The publisher: every host answers /feed/<i>.xml with ETag, 304s and --latency."""
    versions = [0] * feeds
    stall = {"seconds": 0.0}
    cache: dict[tuple[int, int], bytes] = {}

    def body(i: int) -> bytes:
        key = (i, versions[i])
        if key not in cache:
            cache[key] = render_feed(i, versions[i])
        return cache[key]

    def route(target: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        path = urlsplit(target).path
        if path == "/_change":
            q = parse_qs(urlsplit(target).query)
            share, rnd = float(q["fraction"][0]), int(q["round"][0])
            step = max(1, round(1 / share))
            for i in range(feeds):
                if (i + rnd) % step == 0:
                    versions[i] += 1
            return 200, b"ok", {}
        if path == "/_reset":
            versions[:] = [0] * feeds
            stall["seconds"] = 0.0
            return 200, b"ok", {}
        if path == "/_stall":
            stall["seconds"] = float(parse_qs(urlsplit(target).query)["seconds"][0])
            return 200, b"ok", {}
        if path.startswith("/feed/") and path.endswith(".xml"):
            i = int(path[6:-4])
            etag = f'"{i}-{versions[i]}"'
            if headers.get("if-none-match") == etag:
                return 304, b"", {"ETag": etag}
            return 200, body(i), {"ETag": etag, "Content-Type": "application/rss+xml"}
        return 404, b"not found", {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                target = line.split()[1].decode()
                headers: dict[str, str] = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if not target.startswith("/_"):
                    await asyncio.sleep(latency)
                    if writer.get_extra_info("sockname")[0] == STALLED_HOST:
                        await asyncio.sleep(stall["seconds"])
                status, data, extra = route(target, headers)
                head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}"]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [
            await asyncio.start_server(handle, f"127.0.0.{2 + h}", port, backlog=1024)
            for h in range(HOSTS)
        ]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return sock.getsockname()[1]


def control(port: int, what: str) -> None:
    urllib.request.urlopen(f"http://127.0.0.2:{port}/{what}", timeout=10).read()


# --- the engines (each in its own process, so peak RSS is its own) -----------------------------


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_memory(root: int) -> tuple[int, int]:
    """Summed PSS and summed RSS of ``root``'s process tree, in bytes (smaps_rollup)."""
    pss = rss = 0
    for pid in _tree(root):
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
    return pss, rss


def tree_cpu(root: int) -> float:
    """CPU seconds (user and system) the live processes of ``root``'s tree have used: less
    swayed by other load on the machine than wall time."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def stalled(i: int) -> bool:
    return host_of(i) == STALLED_HOST


def prepare(port: int, cycle: str, n: int) -> None:
    """Set the publisher up for a cycle: 10% of feeds changed, or one host stalled."""
    if cycle == "mixed":
        control(port, f"_change?fraction=0.1&round={n}")
    if cycle == "stalled":
        control(port, f"_stall?seconds={STALL}")


def run_ours(
    port: int, feeds: int, folder: Path, concurrency: int, tree: Path
) -> list[dict[str, float]]:
    sys.path.insert(0, str(tree))
    from aggregator import pipeline as pipeline_module
    from aggregator.config import Config, Settings, Source

    sources = tuple(
        Source(
            id=f"feed{i}",
            name=f"Outlet {i}",
            homepage=f"http://{host_of(i)}:{port}/",
            feeds=(f"http://{host_of(i)}:{port}/feed/{i}.xml",),
            lean="center",
        )
        for i in range(feeds)
    )
    config = Config(
        sources=sources,
        settings=Settings(concurrency=concurrency),
        db_url=f"sqlite:///{folder / 'ours.db'}",
        out_dir=folder / "feeds",
        allow_private_hosts=True,
    )
    finished: dict[str, float] = {}

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        finished[detail.split(":")[0]] = time.perf_counter()

    pipe = pipeline_module.Pipeline(config, progress=progress)
    # Workers started before the clock, as in a long-running service (a --baseline revision
    # before the pipeline owned its ParserPool had one per process).
    if hasattr(pipe, "parsers"):
        pipe.parsers.start()
    else:
        pipeline_module.parser_pool()
    rows = []
    for n, cycle in enumerate(CYCLES):
        prepare(port, cycle, n)
        finished.clear()
        cpu = tree_cpu(os.getpid())
        started = time.perf_counter()
        if cycle == "stalled" and hasattr(pipe, "start_poll"):
            run = pipe.start_poll()  # the cycle is held until settle() returns
            results = run.settle()
            seconds = time.perf_counter() - started
            results += run.finish()
        else:
            results = pipe.poll()
            seconds = time.perf_counter() - started
        cpu = tree_cpu(os.getpid()) - cpu
        others = max(t for sid, t in finished.items() if not stalled(int(sid[4:]))) - started
        errors = [r for r in results if r.outcome == "error"]
        rows.append(
            {
                "seconds": seconds,
                "cpu": cpu,
                "errors": len(errors),
                "new": sum(r.new_entries for r in results),
                "first_error": errors[0].error if errors else "",
                "others": others,
            }
        )
    return rows


def run_reader(
    port: int, feeds: int, folder: Path, workers: int, tree: Path
) -> list[dict[str, float]]:
    from reader import make_reader

    reader = make_reader(str(folder / "reader.sqlite"))
    for i in range(feeds):
        reader.add_feed(f"http://{host_of(i)}:{port}/feed/{i}.xml")
    rows = []
    for n, cycle in enumerate(CYCLES):
        prepare(port, cycle, n)
        before = reader.get_entry_counts().total
        cpu = tree_cpu(os.getpid())
        started = time.perf_counter()
        others = 0.0
        # every feed, every cycle (not only those reader's own schedule says are due)
        for result in reader.update_feeds_iter(workers=workers, scheduled=False):
            if not stalled(int(result.url.rsplit("/", 1)[1][:-4])):
                others = time.perf_counter() - started
        seconds = time.perf_counter() - started
        cpu = tree_cpu(os.getpid()) - cpu
        errors = sum(1 for f in reader.get_feeds() if f.last_exception)
        rows.append(
            {
                "seconds": seconds,
                "cpu": cpu,
                "errors": errors,
                "new": reader.get_entry_counts().total - before,
                "first_error": "",
                "others": others,
            }
        )
    reader.close()
    return rows


def engine_main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-poll-{args.engine}-"))
    run = run_ours if args.engine == "ours" else run_reader
    print(json.dumps(run(args.port, args.feeds, folder, int(args.concurrency), Path(args.tree))))


def in_child(
    engine: str, port: int, feeds: int, concurrency: int, tree: Path = ROOT
) -> dict[str, Any] | None:
    """One engine's four cycles in a process of its own, its tree's memory sampled from here
    (outside it, so the sampling takes nothing from its CPU)."""
    command = [
        *(sys.executable, __file__, "--engine", engine, "--port", str(port)),
        *("--feeds", str(feeds), "--concurrency", str(concurrency), "--tree", str(tree)),
    ]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # In the tree's folder and on its path: the parser pool's forkserver imports the
        # parser from there (Python 3.11's forkserver ignores the sys.path it is handed).
        env = {**os.environ, "PYTHONPATH": str(tree)}
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=tree, env=env)
        peak_pss = peak_rss = 0
        while proc.poll() is None:
            pss, rss = tree_memory(proc.pid)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            print(f"{engine} failed:\n{err.read()[-2000:]}", file=sys.stderr)
            return None
        rows = json.loads(out.read().strip().splitlines()[-1])
    return {"rows": rows, "pss": peak_pss, "rss": peak_rss}


def parse_cost(samples: int = 40) -> tuple[float, float]:
    """Milliseconds feedparser takes per bench feed with and without its HTML sanitizing and
    relative-URI resolution (what turning them off would save once output sanitizes)."""
    import feedparser

    data = [render_feed(i, 0) for i in range(samples)]
    costs = []
    for options in ({}, {"sanitize_html": False, "resolve_relative_uris": False}):
        started = time.perf_counter()
        for doc in data:
            feedparser.parse(doc, **options)
        costs.append(1000 * (time.perf_counter() - started) / samples)
    return costs[0], costs[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per response")
    parser.add_argument("--no-reader", action="store_true", help="skip the reader comparison")
    parser.add_argument("--baseline", help="a git revision of balanced-news to run beside")
    parser.add_argument(
        "--concurrency",
        default=str(CONCURRENCY),
        help=f"balanced-news global limits, comma-separated (default {CONCURRENCY}, the "
        "engine's default); one balanced-news run per limit",
    )
    parser.add_argument("--engine", choices=("ours", "reader"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        engine_main(args)
        return 0

    limits = [int(x) for x in args.concurrency.split(",")]
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(port, args.feeds, args.latency, ready), daemon=True
    )
    server.start()
    if not ready.wait(30):
        print("the loopback server did not start", file=sys.stderr)
        return 1
    engines: dict[str, dict[str, Any]] = {}
    readers: dict[int, dict[str, Any]] = {}
    try:
        with ExitStack() as stack:
            trees = [("balanced-news", ROOT)]
            if args.baseline:
                trees.append((args.baseline, stack.enter_context(checked_out(args.baseline))))
            for name, tree in trees:
                for limit in limits:
                    control(port, "_reset")
                    label = f"{name}@{limit}" if len(limits) > 1 else name
                    if (run := in_child("ours", port, args.feeds, limit, tree)) is not None:
                        engines[label] = run
        if not args.no_reader:
            try:
                import reader  # noqa: F401
            except ImportError:
                print("reader is not installed (pip install -e '.[bench]'): skipping it")
            else:
                for workers in READER_WORKERS:
                    control(port, "_reset")
                    if (run := in_child("reader", port, args.feeds, workers)) is not None:
                        readers[workers] = run
    finally:
        server.terminate()
    report(args, limits, engines, readers)
    return 0


def report(
    args: argparse.Namespace,
    limits: list[int],
    engines: dict[str, dict[str, Any]],
    readers: dict[int, dict[str, Any]],
) -> None:
    n = args.feeds
    print(
        f"{n} feeds x {ENTRIES} entries over {HOSTS} loopback hosts, "
        f"{args.latency * 1000:g} ms latency per response, {os.cpu_count()} cores"
    )
    floors = ", ".join(f"{n * args.latency / limit:.2f} s at {limit}" for limit in limits)
    print(f"network floor (balanced-news): N x latency / concurrency = {floors}")
    best = None
    if readers:
        totals = {w: sum(row["seconds"] for row in run["rows"]) for w, run in readers.items()}
        best = min(totals, key=lambda w: totals[w])
        tried = ", ".join(f"{w}: {totals[w]:.1f} s" for w, run in readers.items())
        print(f"reader's workers tried (total seconds of the four cycles): {tried}; best {best}")
        engines = {**engines, **{f"reader@{w}": run for w, run in readers.items()}}
    floor = n * args.latency / limits[0]
    header = f"{'cycle':<8} {'engine':<18} {'seconds':>8} {'CPU s':>6} {'feeds/s':>8} {'new':>6}"
    header += f" {'errors':>6}"
    print(header + f"  {'best reader/this':>16} {'this/floor':>10}")
    for k, cycle in enumerate(CYCLES):
        for name, run in engines.items():
            row = run["rows"][k]
            ratio = ""
            if best is not None and not name.startswith("reader"):
                ratio = f"{readers[best]['rows'][k]['seconds'] / row['seconds']:.2f}x"
            print(
                f"{cycle:<8} {name:<18} {row['seconds']:>8.2f} {row['cpu']:>6.1f} "
                f"{n / row['seconds']:>8.1f} "
                f"{int(row['new']):>6} {int(row['errors']):>6}  {ratio:>16} "
                f"{row['seconds'] / floor:>9.2f}x"
            )
            if row.get("first_error"):
                print(f"         first error: {row['first_error']}")
    for name, run in engines.items():
        print(
            f"peak memory of {name}'s process tree: {run['pss'] / 2**20:.0f} MB PSS, "
            f"{run['rss'] / 2**20:.0f} MB summed RSS"
        )
    for name, run in engines.items():
        rows = run["rows"]
        print(
            f"stalled host ({STALLED_HOST} waits {STALL:g} s per request): {name} held the "
            f"cycle {rows[-1]['seconds']:.2f} s, finished every other host's feeds in "
            f"{rows[-1]['others']:.2f} s (warm cycle without a stall: {rows[1]['seconds']:.2f} s)"
        )
    on, off = parse_cost()
    print(
        f"feedparser per bench feed: {on:.1f} ms with sanitizing and relative URIs, "
        f"{off:.1f} ms without; balanced-news reads these with aggregator.fastfeed "
        "(feedparser's result for plain RSS 2.0; see bench/fastfeed.py)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
