"""The tasks, on one procrastinate app per worker process (see the package docstring)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import Status
from procrastinate.tasks import Task

from aggregator.config import QUEUE_CONNECTIONS, Config, Source
from aggregator.pipeline import Pipeline
from aggregator.store import utcnow
from aggregator.store.queue import QUEUE_SCHEMA, queue_conninfo
from aggregator.workers.hosts import host_groups, poll_chunks

log = logging.getLogger("aggregator.workers")
T = TypeVar("T")

DISPATCH = "balanced_news.dispatch"
POLL = "balanced_news.poll"
EXTRACT = "balanced_news.extract"
GROUP = "balanced_news.group"
PUBLISH = "balanced_news.publish"
POLL_LOCK = "poll-host:"  # + a host group: one poll task of a host group runs at a time
# Queues: a worker may take only some (``worker --queues``), e.g. many pollers and one worker
# for the rest, the publisher.
POLL_QUEUE = "poll"  # dispatch, poll
PROCESS_QUEUE = "process"  # extract, group (with rewrite), publish
QUEUES = (POLL_QUEUE, PROCESS_QUEUE)


@dataclass
class WorkerState:
    """What a worker's tasks share: the pipeline, and the threads its blocking calls run on
    (one per task the worker may run at once)."""

    pipeline: Pipeline
    threads: ThreadPoolExecutor

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, functools.partial(call, *args))


def _state(context: JobContext) -> WorkerState:
    state = context.additional_context["state"]
    assert isinstance(state, WorkerState)
    return state


async def _defer_once(task: Task[..., Any, ...], name: str, **kwargs: Any) -> bool:
    """Defer ``task`` unless one is already waiting under the queueing lock ``name`` (the one
    waiting will see this one's work too); at most one runs at a time (the lock ``name``)."""
    try:
        await task.configure(lock=name, queueing_lock=name).defer_async(**kwargs)
    except AlreadyEnqueued:
        return False
    return True


def build_app(config: Config, name: str = "balanced-news worker") -> App:
    """The procrastinate app of one worker process: its tasks, and its connection pool
    (``QUEUE_CONNECTIONS`` of the worker's ``pool_size``: its listener and its queries)."""
    ws = config.workers
    app = App(
        connector=PsycopgConnector(
            conninfo=queue_conninfo(config.db_url),
            min_size=1,
            max_size=QUEUE_CONNECTIONS - 1,  # its listener has a connection of its own
            kwargs={
                "options": f"-c search_path={QUEUE_SCHEMA}",  # its tables' schema
                "application_name": f"balanced-news worker {name}",
            },
        ),
    )
    sources = {src.id: src for src in config.enabled_sources}
    groups = host_groups(config.enabled_sources)
    lease = timedelta(seconds=ws.lease_seconds)

    @app.periodic(cron=f"* * * * * */{ws.dispatch_seconds}", periodic_id="dispatch")
    @app.task(name=DISPATCH, pass_context=True, queueing_lock=DISPATCH, queue=POLL_QUEUE)
    async def dispatch(context: JobContext, timestamp: int) -> int:
        """Release dead workers' tasks, then claim the due sources and queue their polls
        (``batch`` sources a task). Nothing is claimed while a queued poll has waited half a
        lease: the workers are behind, and a source must not be claimed again while its poll
        still waits."""
        state = _state(context)
        store = state.pipeline.store
        await release_stalled(context.app, ws.stalled_seconds)
        waited = await state.run(store.oldest_queued_seconds, POLL)
        if waited is not None and waited > ws.lease_seconds / 2:
            log.warning(
                "polling cannot keep up: a queued poll has waited %.0f s; add workers", waited
            )
            return 0
        claimed = await state.run(store.claim_due_sources, list(sources), utcnow(), lease)
        queued = 0
        for group, chunk in poll_chunks(claimed, groups, ws.batch):
            # One poll task of a host group runs at a time, on whichever worker (its lock):
            # the per-host limit of one fetcher holds for the whole cluster.
            await poll.configure(lock=f"{POLL_LOCK}{group}").defer_async(
                claims=[list(pair) for pair in chunk]
            )
            queued += 1
        if claimed:
            log.info("dispatch: %d sources due, %d poll tasks queued", len(claimed), queued)
        return queued

    @app.task(name=POLL, pass_context=True, queue=POLL_QUEUE)
    async def poll(context: JobContext, claims: list[list[str]]) -> int:
        """Poll the claimed sources (id, token) together, but those that left the
        configuration or were polled since their claim (their token changed). Stopped
        (SIGTERM), the sources it did not poll are handed back at once, not after their lease.
        A change in the failing sources is published now, new entries or not."""
        state = _state(context)
        store = state.pipeline.store
        pairs = [(sid, token) for sid, token in claims]
        todo = await _still_claimed(state, pairs, sources)
        if not todo:
            return 0
        try:
            failing = await state.run(state.pipeline.failing_sources)
            results = await state.run(state.pipeline.poll, todo)
        finally:
            if state.pipeline.stop.is_set():
                released = await asyncio.to_thread(store.release_claims, pairs, utcnow())
                if released:
                    log.info("poll stopped: %d sources handed back unpolled", released)
        new = sum(r.new_entries for r in results)
        if new:
            await _defer_once(extract, EXTRACT)
        if await state.run(state.pipeline.failing_sources) != failing:
            await _defer_once(publish, PUBLISH)
        return new

    @app.task(name=EXTRACT, pass_context=True, queue=PROCESS_QUEUE)
    async def extract(context: JobContext) -> int:
        state = _state(context)
        async with _queued_again_if_stopped(state, extract, EXTRACT):
            done = await state.run(state.pipeline.timed, "extract", state.pipeline.extract_pending)
        if done:
            await _defer_once(group, GROUP)
        return done

    @app.task(name=GROUP, pass_context=True, queue=PROCESS_QUEUE)
    async def group(context: JobContext) -> int:
        """Group, rewrite what changed, and prune: one task, so the stories it touched are
        rewritten by the run that touched them."""
        state = _state(context)
        async with _queued_again_if_stopped(state, group, GROUP):
            rewritten = await state.run(_group_rewrite_prune, state.pipeline)
        await _defer_once(publish, PUBLISH)
        return rewritten

    @app.task(name=PUBLISH, pass_context=True, queue=PROCESS_QUEUE)
    async def publish(context: JobContext) -> str:
        state = _state(context)
        async with _queued_again_if_stopped(state, publish, PUBLISH):
            path = await state.run(state.pipeline.publish)
        return str(path)

    return app


async def _still_claimed(
    state: WorkerState, pairs: list[tuple[str, str]], sources: dict[str, Source]
) -> list[Source]:
    """The claimed sources still configured whose claim is still theirs: a source polled
    since its task was queued has a new token, and is not polled twice."""
    tokens = await state.run(state.pipeline.store.poll_tokens, [sid for sid, _ in pairs])
    todo = [sources[sid] for sid, token in pairs if sid in sources and tokens.get(sid) == token]
    if len(todo) < len(pairs):
        log.info(
            "poll: %d of %d sources polled since they were queued; skipped",
            len(pairs) - len(todo),
            len(pairs),
        )
    return todo


@asynccontextmanager
async def _queued_again_if_stopped(
    state: WorkerState, task: Task[..., Any, ...], name: str
) -> AsyncIterator[None]:
    """Around a stage's work: when the worker is stopping (the stage ended early, or it was
    cancelled after the grace period), the stage is queued again, so the rest of its work is
    done by the next worker rather than lost. Its work is idempotent (an entry's text, a
    story's grouping, a published file are each stored whole), so a part done twice costs
    time only."""
    try:
        yield
    except asyncio.CancelledError:
        await _defer_once(task, name)
        raise
    if state.pipeline.stop.is_set():
        await _defer_once(task, name)


def _group_rewrite_prune(pipeline: Pipeline) -> int:
    touched = pipeline.timed("group", pipeline.group)
    rewritten = pipeline.timed("rewrite", lambda: pipeline.rewrite(touched))
    pipeline.prune()
    return rewritten


async def release_stalled(app: App, stalled_seconds: float) -> int:
    """The running tasks of workers whose heartbeat stopped (killed, frozen, cut off): a poll
    is marked failed (its source falls due again when its lease ends); any other task is
    queued again (its work is still to do). Returns how many were released."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds))
    for job in stalled:
        if job.task_name in (POLL, DISPATCH):
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        else:
            try:
                await app.job_manager.retry_job(job)
            except ConnectorException:  # another is already queued (queueing lock): enough
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    if stalled:
        log.warning("released %d tasks of workers whose heartbeat stopped", len(stalled))
    return len(stalled)
