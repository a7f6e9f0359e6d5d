"""What ``/status`` reads beyond health: each source's latest poll and extraction failures,
and the workers' task queue (procrastinate's tables, on PostgreSQL only)."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import func, inspect, select, text

from aggregator.models import ExtractFailures, LastPoll, QueueDepth, QueueState, WorkerBeat
from aggregator.store._base import StoreBase
from aggregator.store.queue import QUEUE_SCHEMA, QUEUE_TABLE
from aggregator.store.schema import EntryRow, PollRow

_WORKERS = f"""
SELECT w.id, w.last_heartbeat,
       coalesce(string_agg(j.task_name, ' ' ORDER BY j.id), '') AS running
FROM {QUEUE_SCHEMA}.procrastinate_workers w
LEFT JOIN {QUEUE_SCHEMA}.procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing'
GROUP BY w.id, w.last_heartbeat
ORDER BY w.id
"""
_DEPTH = f"""
SELECT j.task_name,
       count(*) FILTER (WHERE j.status = 'todo') AS waiting,
       count(*) FILTER (WHERE j.status = 'doing') AS running,
       EXTRACT(EPOCH FROM now() - min(e.at) FILTER (WHERE j.status = 'todo')) AS oldest
FROM {QUEUE_SCHEMA}.procrastinate_jobs j
LEFT JOIN {QUEUE_SCHEMA}.procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
WHERE j.status IN ('todo', 'doing')
GROUP BY j.task_name
ORDER BY j.task_name
"""


class StatusMixin(StoreBase):
    def last_polls(self) -> dict[str, LastPoll]:
        with self.session() as s:
            newest = select(func.max(PollRow.id)).group_by(PollRow.source_id)
            rows = s.scalars(select(PollRow).where(PollRow.id.in_(newest)))
            return {
                r.source_id: LastPoll(
                    r.started_at, r.outcome, r.http_status, r.error, r.new_entries, r.seconds
                )
                for r in rows
            }

    def extract_failures(self) -> dict[str, ExtractFailures]:
        failed = EntryRow.extract_error.is_not(None)
        with self.session() as s:
            counts = s.execute(
                select(EntryRow.source_id, func.count(), func.max(EntryRow.id))
                .where(failed)
                .group_by(EntryRow.source_id)
            ).all()
            latest = dict(
                s.execute(
                    select(EntryRow.id, EntryRow.extract_error).where(
                        EntryRow.id.in_([newest for _, _, newest in counts])
                    )
                ).all()
            )
        return {sid: ExtractFailures(n, latest.get(newest) or "") for sid, n, newest in counts}

    def queue_state(self) -> QueueState | None:
        with self.session() as s:
            conn = s.connection()
            if conn.dialect.name != "postgresql":
                return None
            if not inspect(conn).has_table(QUEUE_TABLE, schema=QUEUE_SCHEMA):
                return QueueState((), ())
            workers = tuple(
                WorkerBeat(int(wid), beat.astimezone(UTC), tuple(running.split()))
                for wid, beat, running in s.execute(text(_WORKERS))
            )
            depth = tuple(
                QueueDepth(task, int(waiting), int(running), None if old is None else float(old))
                for task, waiting, running, old in s.execute(text(_DEPTH))
            )
        return QueueState(workers, depth)
