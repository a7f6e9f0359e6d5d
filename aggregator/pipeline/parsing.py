"""The feed parser processes, owned by the pipeline.

Why it exists: feedparser is CPU-bound, and a document may be pathological (one it chews on
for minutes, a regular expression backtracking in C). Documents are parsed in worker
processes, one per core this process may use, and each has a deadline (``parse_timeout``)
counted from when its worker takes it. The worker that overruns is ended (SIGKILL: no signal
handler, C loop or swallowed exception holds that off) and another takes its place later,
while the parses on the other workers go on. A worker that dies costs one retry on a fresh
one, then an error for that feed only.

Nothing here is process-wide: no signal handler, no module patched in this process (each
worker sets itself up, see :func:`aggregator.parse.serve`), no module globals. The pipeline
makes a :class:`ParserPool` (no process starts until the first parse) and ends its workers
when it closes. The workers come from multiprocessing's forkserver (one per process, started
with the first worker, ``aggregator.parse`` preloaded in it), not by forking this process:
its threads (scheduler, writer, test servers) would be copied in an unknown state.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import ForkServerContext
from typing import cast

from aggregator.models import ParsedFeed
from aggregator.parse import serve

log = logging.getLogger("aggregator")

Parse = Callable[[], ParsedFeed]  # a job: picklable (a functools.partial of parse_feed)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or a taskset's
    cpuset), not the machine's: a parser worker per core it cannot use only competes."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 2


def overran(deadline: float) -> ParsedFeed:
    """A feed whose parse was ended at its deadline."""
    error = f"the feed took over {deadline:g} s to parse (parse_timeout); skipped"
    return ParsedFeed(title=None, entries=(), error=error)


STARTUP_SECONDS = 120  # a new worker not ready by then counts as dead
CRASHED = ParsedFeed(title=None, entries=(), error="the feed parser crashed on this document")


class _Overran(Exception):
    """The worker gave no answer by the deadline."""


class _Gone(Exception):
    """The worker died (killed, out of memory, a crash in a C parser)."""


def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aggregator.parse"])  # read when the forkserver starts
    return context


class _Worker:
    """One parser process and this process's end of its pipe."""

    def __init__(self) -> None:
        context = _context()
        ours, theirs = context.Pipe()
        self.process = context.Process(
            target=serve, args=(theirs, os.getpid()), name="feed-parser", daemon=True
        )
        try:
            self.process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker's end is the worker's: its death closes the pipe
        self.pid = self.process.pid
        self.conn = ours
        self._ready = False
        self._ended = False
        self._ending = threading.Lock()

    def ready(self) -> None:
        """Wait for a new worker's set-up (its word that it is ready), so that no document's
        deadline counts it: on a loaded machine a start can take seconds."""
        if self._ready:
            return
        try:
            if not self.conn.poll(STARTUP_SECONDS):
                raise _Gone(f"no word from a new parser process in {STARTUP_SECONDS} s")
            self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise _Gone from exc
        self._ready = True

    def call(self, job: bytes, deadline: float | None) -> bytes:
        """Hand the worker ``job`` and wait for its answer, at most ``deadline`` seconds."""
        try:
            self.conn.send_bytes(job)
            answered = self.conn.poll(deadline)  # also True when the worker died (end of file)
        except (EOFError, OSError) as exc:
            raise _Gone from exc
        if not answered:
            raise _Overran
        try:
            return self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise _Gone from exc

    def end(self) -> None:
        """Kill the process (it may be mid-parse: nothing it holds needs a goodbye)."""
        with self._ending:
            if self._ended:
                return
            self._ended = True
            self.process.kill()
            self.process.join(5)
            self.conn.close()


def _end_all(running: set[_Worker], lock: threading.Lock, threads: ThreadPoolExecutor) -> None:
    threads.shutdown(wait=False, cancel_futures=True)
    with lock:
        workers = list(running)
        running.clear()
    for worker in workers:
        worker.end()


class ParserPool:
    """Parser worker processes, ``size`` of them (default: one per usable core), each started
    when first needed; :meth:`parse` (on an event loop) or :meth:`run` hands one a document.

    A pool never closed ends its workers when it is garbage-collected (and a worker ends by
    itself once this process is gone).
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size or usable_cores()
        self._free: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        for _ in range(self.size):
            self._free.put(None)  # a place for a worker, started when first needed
        self._running: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        # One thread per worker waits on it, so an event loop never blocks on a parse.
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="feed-parser")
        self._finalizer = weakref.finalize(self, _end_all, self._running, self._lock, self._threads)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every worker (a parse under way ends with its worker); no other starts."""
        self._closed = True
        self._finalizer()

    def pids(self) -> list[int]:
        """The running workers' process ids."""
        with self._lock:
            return sorted(w.pid for w in self._running if w.pid is not None)

    def start(self) -> None:
        """Start every worker now (each start costs up to a second of CPU), so that the first
        parses do not wait for them."""
        taken: list[_Worker] = []
        try:
            for _ in range(self.size):
                taken.append(self._take())
            for worker in taken:
                worker.ready()
        except _Gone:
            pass  # started again by the parse that needs it
        finally:
            for worker in taken:
                self._free.put(worker)

    async def parse(self, job: Parse, deadline: float | None = None) -> ParsedFeed:
        """:meth:`run` off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.run, job, deadline)

    def run(self, job: Parse, deadline: float | None = None) -> ParsedFeed:
        """``job()`` in a free worker, waiting for one; what it returns, or raises.

        Past ``deadline`` seconds (counted from when the worker takes it) the worker is ended
        and the feed gets an error; a worker that dies costs one retry on another, then an
        error for this feed only.
        """
        data = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)  # a job that cannot travel: raised
        for attempt in (1, 2):
            worker = self._take()
            kept: _Worker | None = None
            try:
                worker.ready()
                reply = worker.call(data, deadline)
                kept = worker
            except _Overran:
                log.warning("a feed took over %g s to parse; its parser process is ended", deadline)
                return overran(cast(float, deadline))
            except _Gone:
                log.warning("a feed parser process died (attempt %d); another starts", attempt)
                continue
            finally:
                if kept is None:  # ended, dead, or interrupted mid-parse: its state is unknown
                    self._end(worker)
                self._free.put(kept)
            ok, value = pickle.loads(reply)
            if not ok:
                raise value
            return cast(ParsedFeed, value)
        return CRASHED

    def _take(self) -> _Worker:
        """A free worker, started now if its place is empty (or its worker died while idle);
        waits while every one is busy."""
        worker = self._free.get()
        try:
            if worker is not None and not worker.process.is_alive():  # died while idle
                self._end(worker)
                worker = None
            if worker is None:
                worker = self._start()
            elif self._closed:
                raise RuntimeError("the feed parser pool is closed")
        except BaseException:
            self._free.put(worker)
            raise
        return worker

    def _start(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the feed parser pool is closed")
            worker = _Worker()
            self._running.add(worker)
        return worker

    def _end(self, worker: _Worker) -> None:
        with self._lock:
            self._running.discard(worker)
        worker.end()
