"""The store's contract: every storage operation, by domain, with what it takes and returns.

Like reader's ``_types.StorageType``: the faces and the pipeline depend on this interface, the
SQL lives behind it (:class:`aggregator.store.Store`, one mixin per domain). Everything passed
in or out is plain data (:mod:`aggregator.models`, builtins), never a row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from aggregator.config import Source
from aggregator.models import (
    ArticleText,
    ExtractFailures,
    FeedState,
    FeedText,
    GroupingMark,
    GroupStep,
    LastPoll,
    PendingPage,
    PollStored,
    PollWait,
    Pruned,
    PublishedStory,
    QueueState,
    RetiredStory,
    RewriteInputs,
    SourcePoll,
    SourceState,
    SourceStatus,
    StageEvent,
    StageRun,
    StoredEntry,
    StoryRewrite,
)
from aggregator.polling import Decision, Health


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

    def source_identity(self, source_id: str) -> tuple[str, str, str] | None:
        """A stored source's (name, lean, kind): for a source since removed from the config."""

    # --- polls (``polls.py``) ------------------------------------------------------------------

    def poll_state(
        self, source_ids: Collection[str]
    ) -> tuple[dict[str, FeedState], dict[str, PollWait]]:
        """What polling the given sources needs (one query each): each of their feeds' address
        and validators by feed URL, and each stored source's wait state by id."""

    def record_polls(
        self,
        polls: Sequence[SourcePoll],
        decide: Callable[[str, Health, int, datetime], Decision],
    ) -> list[PollStored | Exception]:
        """Record finished polls, each source whole or not at all: its new entries (known
        ones, by key or ident or tombstone, skipped), its poll rows, its feeds' validators and
        moves, and its health as ``decide`` (a pure function, given the source's id, health,
        new entries and the time) makes it. The sources share one transaction; should it fail,
        each is tried again in its own, and one that still fails gets its exception back in
        its place. Results in the order of ``polls``."""

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

    def release_claims(self, claims: Collection[tuple[str, str]], now: datetime) -> int:
        """Hand back claimed sources (id, token) not polled since their claim: due ``now``,
        not when their lease ends (a worker stopping mid-poll). How many were handed back."""

    def oldest_queued_seconds(self, task_name: str) -> float | None:
        """How long the oldest waiting job of ``task_name`` has waited in procrastinate's
        queue (PostgreSQL only), None when none waits."""

    # --- entries (``entries.py``) --------------------------------------------------------------

    def entry_counts(self) -> dict[str, int]:
        """How many entries each source has stored, by source id (none: absent)."""

    def count_entries(self) -> int:
        """How many entries are stored."""

    def pages_pending(self) -> list[PendingPage]:
        """The entries without article text yet, oldest row first."""

    def record_article_text(self, entry_id: int, decide: Callable[[FeedText], ArticleText]) -> bool:
        """Store the entry's article text as ``decide`` (a pure function, given the entry's own
        feed text to fall back on) makes it, in one transaction; False when the entry is gone.
        The feed text is read here rather than handed out with :meth:`pages_pending`: a cold
        cycle has tens of thousands of entries pending."""

    def prune_entries(
        self, cutoff: datetime, now: datetime, history_since: datetime | None = None
    ) -> Pruned:
        """Drop the entries fetched before ``cutoff`` whose story has no entry fetched since,
        leave a tombstone for each (pruned at ``now``), and drop the stories left empty (a
        retired one stays: its id is taken). With ``history_since``, also say how the
        grouping changed (for a story index kept since then)."""

    # --- grouping (``grouping.py``) ------------------------------------------------------------

    def grouping_mark(self) -> GroupingMark:
        """The grouping summed up: grouped entries (count, highest id), retired stories."""

    def ungrouped_entries(self) -> list[StoredEntry]:
        """The entries with text and no story yet, in the order they are grouped."""

    def grouped_entries(self, since: datetime) -> list[StoredEntry]:
        """The entries in a story published since ``since``, in the order they were grouped."""

    def texts_before(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """The title and text of the last ``limit`` grouped entries published before
        ``before``, copies left out: what a story index rebuilt from ``before`` on had seen
        (its document frequencies)."""

    def storylines(self, since: datetime) -> dict[str, str]:
        """Each story last published since ``since`` with a storyline: its storyline's id."""

    def record_grouping(self, steps: Sequence[GroupStep]) -> None:
        """Record the grouping's decisions in their order, in one transaction: stories opened,
        entries placed (a story's span widens to them), stories merged (the newer one's entries
        move to the older, its row stays with ``merged_into`` so the id is never reused).
        A story that gains entries loses its ``input_hash`` in the same transaction, so it is
        rewritten even when the process dies before the rewrite stage."""

    # --- stories (``stories.py``) --------------------------------------------------------------

    def count_stories(self, *, live: bool = False) -> int:
        """How many story rows there are: retired ones (merged into another) included, or with
        ``live`` only the stories that stand on their own (what a cycle reports)."""

    def published_stories(self, limit: int | None = None) -> list[PublishedStory]:
        """The newest ``limit`` rewritten stories (all when None), newest first, with their
        storylines' other events: their rewrites and coverage as data, for publishing to
        render (``content_html`` is "" but for a story stored before 0008)."""

    def record_shown(self, shown: Mapping[str, str], at: datetime) -> None:
        """Stories whose shown content changed (id: its new ``content_hash``): their
        ``updated`` time moves to ``at``, in one transaction."""

    def retired_stories(self, since: datetime) -> list[RetiredStory]:
        """Stories merged since ``since`` into a story that is published, newest first."""

    def stories_to_rewrite(self) -> set[str]:
        """Stories never rewritten, whose model rewrite should be tried again, or stored
        before 0008 (their coverage is to be stored)."""

    def rewrite_inputs(self, story_id: str) -> RewriteInputs | None:
        """What the story's rewrite is made from (None: no such story); a story stored
        before 0008 also brings its stored rewrite (``legacy``)."""

    def related_stories(self, story_ids: Collection[str]) -> set[str]:
        """The live stories ``related_coverage`` links to any of ``story_ids`` (either way),
        those left out: whose notes may change when these stories change."""

    def related_entries(self, story_id: str) -> list[StoredEntry]:
        """Other stories' entries related to this story (``related_coverage``): those found
        related to it, and the entries of the stories its own entries were found related to;
        most related first."""

    def save_rewrite(self, story_id: str, rewrite: StoryRewrite) -> bool:
        """Store a story's rewrite as data in one transaction; the story is then published.
        False when the story is gone (pruned meanwhile)."""

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

    def stage_history(self, limit: int) -> list[StageEvent]:
        """The last ``limit`` runs of any stage, oldest first (only the newest few hundred
        are kept)."""

    # --- the operator's status page (``status.py``) -------------------------------------------

    def last_polls(self) -> dict[str, LastPoll]:
        """Each polled source's latest poll (of any of its feeds), by source id."""

    def extract_failures(self) -> dict[str, ExtractFailures]:
        """By source id: how many stored entries got no text from their page, and the latest
        reason (sources without any are absent)."""

    def queue_state(self) -> QueueState | None:
        """The workers and the task queue's depth; None on a database workers cannot use
        (SQLite), empty where no worker ever ran."""
