"""Workers: the pipeline's stages as procrastinate tasks, shared by processes on many hosts.

``balanced-news worker`` runs one worker against PostgreSQL; start as many as needed, anywhere,
with the same ``BALANCED_NEWS_DB``, ``BALANCED_NEWS_SOURCES``, ``BALANCED_NEWS_OUT`` and
``BALANCED_NEWS_ALLOW_PRIVATE_HOSTS``. The work flows through procrastinate's tables:

- ``dispatch`` (periodic, deferred once per tick whatever the number of workers): releases the
  tasks of workers whose heartbeat stopped, claims the due sources (``FOR UPDATE SKIP LOCKED``,
  ``next_poll_at`` pushed forward as a lease) and defers one ``poll`` per source;
- ``poll``: polls one source (one at a time per source: its queueing lock and lock), then
  defers ``extract`` when it stored something new;
- ``extract``, then ``group`` (grouping, rewriting and pruning), then ``publish``: each runs
  on one worker at a time (its lock) and at most one more waits (its queueing lock), so a
  burst of polls coalesces into a few runs.

SQLite installs keep the single-process path (``run``, ``scheduler.py``).
"""

from __future__ import annotations

from aggregator.workers.runner import check_worker_config, run_worker
from aggregator.workers.tasks import build_app

__all__ = ["build_app", "check_worker_config", "run_worker"]
