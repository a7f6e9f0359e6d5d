"""The store's contract: every storage operation, by domain, with what it takes and returns.

Like reader's ``_types.StorageType``: the faces and the pipeline depend on this interface, the
SQL lives behind it (:class:`aggregator.store.Store`, one mixin per domain). Everything passed
in or out is plain data (:mod:`aggregator.models`, builtins), never a row.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from aggregator.config import Source
from aggregator.models import PublishedStory, RetiredStory, SourceState, SourceStatus, StageRun


class StoreType(Protocol):
    """What the pipeline and the faces may ask of the database."""

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Let go of the connections (when the store opened them)."""

    # --- feeds and polls (``feeds.py``) --------------------------------------------------------

    def sync_sources(self, sources: Sequence[Source]) -> None:
        """Make the stored sources and feeds match the configuration (names and leans may
        change; a feed may move to another source). Nothing is deleted."""

    def next_poll_times(self) -> dict[str, datetime | None]:
        """Each stored source's next poll time (None: never polled), by source id."""

    def source_states(self) -> dict[str, SourceState]:
        """Each stored source's polling state, health and entry count, by source id."""

    # --- leases, for workers (``leases.py``) --------------------------------------------------

    def claim_due_sources(
        self, among: Collection[str], now: datetime, lease: timedelta, limit: int = 10_000
    ) -> list[tuple[str, str]]:
        """Claim the sources of ``among`` (ids) due at ``now`` that no other transaction is
        claiming (SKIP LOCKED), their next poll pushed to ``now + lease``; each with its poll
        token (see :meth:`poll_token`), most overdue first."""

    def poll_tokens(self, source_ids: Collection[str]) -> dict[str, str]:
        """Each source's poll token, which changes each time it is polled (its last poll
        time), by id; a source that does not exist is absent. A queued poll whose token no
        longer matches is spent."""

    def oldest_queued_seconds(self, task_name: str) -> float | None:
        """How long the oldest waiting job of ``task_name`` has waited in procrastinate's
        queue (PostgreSQL only), None when none waits."""

    # --- entries (``entries.py``) --------------------------------------------------------------

    def entry_counts(self) -> dict[str, int]:
        """How many entries each source has stored, by source id (none: absent)."""

    def count_entries(self) -> int:
        """How many entries are stored."""

    # --- stories (``stories.py``) --------------------------------------------------------------

    def count_stories(self) -> int:
        """How many story rows there are (retired ones included)."""

    def published_stories(self, limit: int | None = None) -> list[PublishedStory]:
        """The newest ``limit`` rewritten stories (all when None), newest first, with their
        storylines' other events."""

    def retired_stories(self, since: datetime) -> list[RetiredStory]:
        """Stories merged since ``since`` into a story that is published, newest first."""

    # --- health and metrics (``health.py``) ----------------------------------------------------

    def failing_sources(self, among: Collection[str]) -> list[SourceStatus]:
        """The sources of ``among`` (ids) that are failing or parked, by name."""

    def count_failing(self) -> int:
        """How many stored sources are failing or parked."""

    def poll_outcomes(self) -> dict[str, int]:
        """How many polls ended in each outcome (new, unchanged, not-modified, error)."""

    def record_stage(self, stage: str, seconds: float, at: datetime) -> None:
        """Add one run of ``stage`` that took ``seconds`` and ended ``at``."""

    def stage_runs(self) -> dict[str, StageRun]:
        """Each stage's last run and totals, by stage name."""
