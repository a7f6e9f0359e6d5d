"""Conditional GETs per second that ``balanced-news serve`` answers 304 (target: 2,000/s).

Publishes the bundled demo, starts the real ``balanced-news serve`` command in its own process,
and loads it from other processes: wrk (Debian's package) when installed, and a Python
keep-alive client in several processes (always), side by side, for

- ``304``: ``GET /balanced.atom`` with the feed's ETag in If-None-Match (a polling reader);
- ``200 gzip``: the same without a validator, gzip accepted (a new reader).

    python bench/serve.py [--seconds S] [--connections N] [--processes N]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aggregator.config import load_config
from aggregator.demo import SITE, SOURCES, SampleWeb
from aggregator.pipeline import Pipeline

TARGET = 2000.0
PATH = "/balanced.atom"


def publish_demo(folder: Path) -> tuple[Path, str, Path]:
    """Publish the demo into ``folder``; return the sources file, db URL and output folder."""
    with SampleWeb(SITE) as web:
        sources = folder / "sources.toml"
        sources.write_text(web.render(SOURCES.read_text(encoding="utf-8")), encoding="utf-8")
        db_url = f"sqlite:///{folder / 'bench.db'}"
        out = folder / "feeds"
        Pipeline(load_config(sources, db_url, out, True)).run_cycle()
    return sources, db_url, out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(sources: Path, db_url: str, out: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("balanced-news")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aggregator.cli"]
    args = ["serve", "--sources", str(sources), "--db", db_url, "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, *args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _client(port: int, headers: dict[str, str], seconds: float, results) -> None:  # noqa: ANN001
    conn = http.client.HTTPConnection("127.0.0.1", port)
    counts: dict[int, int] = {}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        conn.request("GET", PATH, headers=headers)
        res = conn.getresponse()
        res.read()
        counts[res.status] = counts.get(res.status, 0) + 1
    conn.close()
    results.put(counts)


def python_load(port: int, headers: dict[str, str], seconds: float, procs: int) -> tuple:
    """Requests/s from ``procs`` processes, one keep-alive connection each; and the statuses."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_client, args=(port, headers, seconds, results))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    totals: dict[int, int] = {}
    for _ in workers:
        for status, n in results.get().items():
            totals[status] = totals.get(status, 0) + n
    for w in workers:
        w.join()
    return sum(totals.values()) / seconds, totals


def wrk_load(port: int, headers: dict[str, str], seconds: float, conns: int) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    cmd = [wrk, "-t1", f"-c{conns}", f"-d{seconds:.0f}s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx or 3xx" in out:
        print(out, file=sys.stderr)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--processes", type=int, default=2, help="Python client processes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sources, db_url, out = publish_demo(Path(tmp))
        port = free_port()
        server = start_server(sources, db_url, out, port)
        try:
            first = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers={"accept-encoding": "gzip"})
            etag = first.headers["etag"]
            check = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers={"if-none-match": etag})
            assert check.status_code == 304, check.status_code
            print(
                f"feed {len(first.content)} bytes ({first.num_bytes_downloaded} gzipped); "
                f"server: balanced-news serve (1 uvicorn process); target {TARGET:.0f} 304/s",
                file=sys.stderr,
            )
            cases = {
                "304": {"if-none-match": etag, "accept-encoding": "gzip"},
                "200 gzip": {"accept-encoding": "gzip"},
            }
            header = f"{'request':<10} {'wrk req/s':>10} {'python req/s':>13} {'vs target':>10}"
            print(f"{header}  statuses")
            for name, headers in cases.items():
                wrk = wrk_load(port, headers, args.seconds, args.connections)
                py, statuses = python_load(port, headers, args.seconds, args.processes)
                best = max(wrk or 0.0, py)
                wrk_text = f"{wrk:>10.0f}" if wrk is not None else f"{'-':>10}"
                print(
                    f"{name:<10} {wrk_text} {py:>13.0f} {best / TARGET:>9.1f}x  "
                    f"{dict(sorted(statuses.items()))}"
                )
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
