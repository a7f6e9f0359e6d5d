"""Polls: what a feed's next poll needs, and a poll's results (entries, poll rows, health).

The writer thread of a poll hands several finished sources at once: they share a transaction
(a commit per source is most of the cost of a warm cycle), and each source is still stored
whole or not at all. The source's next health comes from a pure decision the caller passes in
(``polling.decide``); the store only reads what it needs and records what it says.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, insert, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aggregator.models import FeedPoll, FeedState, PollStored, PollWait, SourcePoll, Validators
from aggregator.polling import Decision, Health
from aggregator.store._base import StoreBase
from aggregator.store.schema import EntryRow, FeedRow, PollRow, SourceRow, TombstoneRow, utcnow

# Given a source's id, its health before the poll, its new entries and the time: its decision.
Decide = Callable[[str, Health, int, datetime], Decision]


def _insert_new_entries(dialect: str) -> Insert:
    """An insert of entries that skips one already stored (same source and key): delivery to
    workers is at least once, so two polls of one feed may race to store the same entry."""
    if dialect == "postgresql":
        return postgresql.insert(EntryRow).on_conflict_do_nothing(
            index_elements=["source_id", "key"]
        )
    if dialect == "sqlite":
        return sqlite.insert(EntryRow).on_conflict_do_nothing(index_elements=["source_id", "key"])
    return insert(EntryRow)


class PollsMixin(StoreBase):
    def poll_state(
        self, source_ids: Collection[str]
    ) -> tuple[dict[str, FeedState], dict[str, PollWait]]:
        ids = list(source_ids)
        with self.session() as s:
            feeds = {
                row.url: FeedState(
                    row.fetch_url or row.url,
                    Validators(row.etag, row.last_modified),
                    row.body_hash,
                )
                for row in s.scalars(select(FeedRow).where(FeedRow.source_id.in_(ids)))
            }
            waits = {
                row.id: PollWait(
                    row.status,
                    row.consecutive_errors or 0,
                    row.next_poll_at,
                    row.retry_until,
                    row.mean_response_ms,
                )
                for row in s.scalars(select(SourceRow).where(SourceRow.id.in_(ids)))
            }
        return feeds, waits

    def record_polls(
        self, polls: Sequence[SourcePoll], decide: Decide
    ) -> list[PollStored | Exception]:
        if not polls:
            return []
        try:
            with self.session.begin() as s:
                rows = _preload(s, polls)  # noqa: F841 - kept alive for Session.get
                fresh = _fresh(s, polls)
                return [_record_poll(s, poll, decide, fresh) for poll in polls]
        except Exception:  # noqa: BLE001 - retried one by one below, where it is reported
            pass
        settled: list[PollStored | Exception] = []
        for poll in polls:
            try:
                with self.session.begin() as s:
                    settled.append(_record_poll(s, poll, decide, set()))
            except Exception as exc:  # noqa: BLE001 - handed back for this source alone
                settled.append(exc)
        return settled


def _preload(s: Session, polls: Sequence[SourcePoll]) -> list[object]:
    """The batch's source and feed rows in two queries; ``Session.get`` then finds them in the
    identity map instead of asking the database once per source. The caller keeps the returned
    rows: the identity map holds unchanged rows only weakly."""
    ids = [p.source_id for p in polls]
    urls = [f.url for p in polls for f in p.feeds]
    return [
        *s.scalars(select(SourceRow).where(SourceRow.id.in_(ids))),
        *s.scalars(select(FeedRow).where(FeedRow.url.in_(urls))),
    ]


def _fresh(s: Session, polls: Sequence[SourcePoll]) -> set[str]:
    """Sources of the batch with entries to store and nothing stored yet (no entry, no
    tombstone): one query here spares each of them the query for its known entries."""
    ids = {p.source_id for p in polls if any(f.entries is not None for f in p.feeds)}
    if not ids:
        return set()
    stored = union_all(
        *(
            select(model.source_id).where(model.source_id.in_(ids))
            for model in (EntryRow, TombstoneRow)
        )
    )
    return ids - set(s.scalars(select(stored.subquery().c.source_id).distinct()))


def _record_poll(s: Session, poll: SourcePoll, decide: Decide, fresh: set[str]) -> PollStored:
    """In the caller's transaction: the source's new entries, polls and health.

    ``fresh``: ids of sources known to have nothing stored (see :func:`_fresh`). The ORM
    changes (polls, health) are flushed once, at commit: entries go in through Core, so no
    query here needs them flushed first, and one flush batches them all.
    """
    with s.no_autoflush:
        return _record_poll_rows(s, poll, decide, fresh)


def _record_poll_rows(s: Session, poll: SourcePoll, decide: Decide, fresh: set[str]) -> PollStored:
    now = utcnow()
    new_entries: list[int] = []
    moved: list[tuple[str, str]] = []
    for f in poll.feeds:
        feed_row = s.get(FeedRow, f.url)
        new = 0
        outcome = f.outcome
        if f.entries is not None:
            new = _store_entries(s, poll.source_id, f, now, fresh=poll.source_id in fresh)
            fresh.discard(poll.source_id)  # its next feed must see what this one stored
            outcome = "new" if new else "unchanged"
            if feed_row is not None:
                feed_row.etag = f.validators.etag
                feed_row.last_modified = f.validators.last_modified
                feed_row.body_hash = f.body_hash
        new_entries.append(new)
        s.add(
            PollRow(
                source_id=poll.source_id,
                feed_url=f.url,
                started_at=f.started,
                seconds=f.seconds,
                http_status=f.http_status,
                outcome=outcome,
                error=f.error,
                new_entries=new,
            )
        )
        if feed_row is not None:
            feed_row.last_poll_at = now
            if not f.error and f.moved_to and f.moved_to != feed_row.fetch_url:
                feed_row.fetch_url = f.moved_to
                moved.append((f.url, f.moved_to))
    status = _record_health(s, poll, decide, sum(new_entries), now)
    return PollStored(tuple(new_entries), status, tuple(moved))


def _store_entries(
    s: Session, source_id: str, feed: FeedPoll, now: datetime, *, fresh: bool
) -> int:
    """Insert the entries we have not seen; return how many were new.

    An entry is known by its key (guid), or by its link and title together (feeds that change
    their guids), and an entry we pruned stays gone (tombstones). ``fresh``: the source has
    nothing stored, so there is nothing to look up.
    """
    entries = feed.entries or ()
    ident_of = feed.idents
    keys = [e.key for e in entries]
    idents = [i for i in ident_of if i]
    known_keys: set[str] = set()
    known_idents: set[str] = set()
    if not fresh:
        seen = union_all(
            *(
                select(model.key, model.ident).where(
                    model.source_id == source_id, model.key.in_(keys) | model.ident.in_(idents)
                )
                for model in (EntryRow, TombstoneRow)
            )
        )
        for key, ident in s.execute(seen):
            known_keys.add(key)
            if ident:
                known_idents.add(ident)
    rows: list[dict[str, Any]] = []
    for entry, ident in zip(entries, ident_of, strict=True):
        if entry.key in known_keys or (ident and ident in known_idents):
            continue
        known_keys.add(entry.key)
        if ident:
            known_idents.add(ident)
        rows.append(
            {
                "source_id": source_id,
                "key": entry.key,
                "ident": ident,
                "link": entry.link,
                "title": entry.title,
                "author": entry.author,
                "published_at": entry.published or now,
                "updated_at": entry.updated,
                "fetched_at": now,
                "summary": entry.summary,
                "content": entry.content,
                "image": entry.image,
                "image_caption": entry.image_caption,
                "text_available": True,
            }
        )
    if rows:
        # Core, not ORM: one executemany without the unit of work's per-row bookkeeping.
        s.execute(_insert_new_entries(s.get_bind().dialect.name), rows)
    return len(rows)


def _record_health(
    s: Session, poll: SourcePoll, decide: Decide, new_entries: int, now: datetime
) -> str:
    """Status, next poll time and response time of a source after a poll; returns status."""
    row = s.get(SourceRow, poll.source_id)
    if row is None:  # pragma: no cover - sync_sources made it
        return "new"
    health = Health(
        status=row.status,
        failing_since=row.failing_since,
        consecutive_errors=row.consecutive_errors or 0,
        mean_gap=timedelta(seconds=row.mean_gap_seconds) if row.mean_gap_seconds else None,
        last_new_entry_at=row.last_new_entry_at,
    )
    decision = decide(poll.source_id, health, new_entries, now)
    row.last_poll_at = now
    row.last_http_status = poll.http_status
    row.status = decision.status
    row.failing_since = decision.failing_since
    row.consecutive_errors = decision.consecutive_errors
    row.next_poll_at = decision.next_poll_at
    row.retry_until = decision.retry_until
    row.mean_gap_seconds = decision.mean_gap.total_seconds() if decision.mean_gap else None
    row.last_new_entry_at = decision.last_new_entry_at
    if poll.feeds:
        ms = 1000 * sum(f.seconds for f in poll.feeds) / len(poll.feeds)
        row.mean_response_ms = (
            ms if row.mean_response_ms is None else (0.8 * row.mean_response_ms + 0.2 * ms)
        )
    if poll.error is not None:
        row.last_error = poll.error
    else:
        row.last_error = None
        row.last_ok_at = now
    return decision.status
