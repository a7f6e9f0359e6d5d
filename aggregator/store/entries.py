"""Entries: the articles read from feeds, their article text, and retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from aggregator.models import ArticleText, FeedText, PendingPage, Pruned, StoredEntry
from aggregator.store._base import StoreBase
from aggregator.store.schema import EntryRow, StoryRow, TombstoneRow, UTCDateTime

# The order entries are grouped and rewritten in: published time, then fetch time, then the
# entry's own identity (never the row id, which depends on which source answered first), so a
# replay of the same feeds opens every story with the same article on every machine.
ENTRY_ORDER = (EntryRow.published_at, EntryRow.fetched_at, EntryRow.source_id, EntryRow.key)

# What a StoredEntry holds, in its field order: never the feed's summary and content, which
# are most of a row and which neither grouping nor rewriting reads.
_STORED = (
    EntryRow.id,
    EntryRow.source_id,
    EntryRow.key,
    EntryRow.link,
    EntryRow.title,
    EntryRow.published_at,
    EntryRow.fetched_at,
    EntryRow.text,
    EntryRow.text_available,
    EntryRow.extract_error,
    EntryRow.story_id,
    EntryRow.copy_of,
    EntryRow.image,
    EntryRow.side_join,
    EntryRow.image_caption,
)


def stored_entries(s: Session, *where: Any) -> list[StoredEntry]:
    """The entries matching ``where``, in :data:`ENTRY_ORDER`."""
    rows = s.execute(select(*_STORED).where(*where).order_by(*ENTRY_ORDER))
    return [
        StoredEntry(
            id=r.id,
            source_id=r.source_id,
            key=r.key,
            link=r.link,
            title=r.title,
            published=r.published_at,
            fetched=r.fetched_at,
            text=r.text,
            text_available=r.text_available is not False,
            extract_error=r.extract_error,
            story_id=r.story_id,
            copy_of=r.copy_of,
            image=r.image,
            side_join=bool(r.side_join),
            image_caption=r.image_caption,
        )
        for r in rows
    ]


def counts_by_source(s: Session) -> dict[str, int]:
    """How many entries each source has stored (sources with none are absent)."""
    rows = s.execute(select(EntryRow.source_id, func.count()).group_by(EntryRow.source_id))
    return dict(rows.all())


def grouping_mark(s: Session) -> tuple[int, int | None, int]:
    """The grouping summed up: grouped entries (count, highest id) and retired stories."""
    grouped = s.execute(
        select(func.count(EntryRow.id), func.max(EntryRow.id)).where(EntryRow.story_id.is_not(None))
    ).one()
    retired = s.scalar(select(func.count()).where(StoryRow.merged_into.is_not(None)))
    return (grouped[0] or 0, grouped[1], retired or 0)


class EntriesMixin(StoreBase):
    def entry_counts(self) -> dict[str, int]:
        with self.session() as s:
            return counts_by_source(s)

    def count_entries(self) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(EntryRow)) or 0

    # --- extraction ----------------------------------------------------------------------------

    def pages_pending(self) -> list[PendingPage]:
        with self.session() as s:
            rows = s.execute(
                select(EntryRow.id, EntryRow.source_id, EntryRow.link)
                .where(EntryRow.text.is_(None))
                .order_by(EntryRow.id)
            )
            return [PendingPage(entry_id, source_id, link) for entry_id, source_id, link in rows]

    def record_article_text(self, entry_id: int, decide: Callable[[FeedText], ArticleText]) -> bool:
        with self.session.begin() as s:
            entry = s.get(EntryRow, entry_id)
            if entry is None:  # pruned meanwhile
                return False
            found = decide(FeedText(entry.title, entry.summary, entry.content))
            entry.text = found.text
            entry.extract_error = found.error
            entry.text_available = found.available
            # The feed's own picture comes first, with its caption (else the page's caption
            # of that same picture); the page's picture and caption where the feed gave none.
            if not entry.image:
                entry.image, entry.image_caption = found.image, found.image_caption
            elif not entry.image_caption and entry.image == found.image:
                entry.image_caption = found.image_caption
            return True

    # --- retention -----------------------------------------------------------------------------

    def prune_entries(
        self, cutoff: datetime, now: datetime, history_since: datetime | None = None
    ) -> Pruned:
        recent = select(EntryRow.story_id).where(
            EntryRow.fetched_at >= cutoff, EntryRow.story_id.is_not(None)
        )
        doomed = (
            EntryRow.fetched_at < cutoff,
            (EntryRow.story_id.is_(None)) | (EntryRow.story_id.not_in(recent)),
        )
        grouped = (*doomed, EntryRow.story_id.is_not(None))
        with self.session.begin() as s:
            before = gone_grouped = inside = None
            if history_since is not None:
                before = grouping_mark(s)
                gone_grouped = s.scalar(select(func.count()).where(*grouped)) or 0
                inside = (
                    s.scalar(
                        select(func.count()).where(*grouped, EntryRow.published_at >= history_since)
                    )
                    or 0
                )
            # Tombstones first: a feed that still lists a pruned entry must not bring it back.
            s.execute(
                insert(TombstoneRow).from_select(
                    ["source_id", "key", "ident", "pruned_at"],
                    select(
                        EntryRow.source_id,
                        EntryRow.key,
                        EntryRow.ident,
                        literal(now, UTCDateTime()),
                    ).where(*doomed),
                )
            )
            gone: int = s.execute(delete(EntryRow).where(*doomed)).rowcount or 0  # type: ignore[attr-defined]
            used = select(EntryRow.story_id).where(EntryRow.story_id.is_not(None))
            # Retired (merged) rows stay: they hold their ids so that none is ever reused.
            s.execute(
                delete(StoryRow).where(StoryRow.id.not_in(used), StoryRow.merged_into.is_(None))
            )
            if before is None:
                return Pruned(gone)
            highest = s.scalar(select(func.max(EntryRow.id)).where(EntryRow.story_id.is_not(None)))
            return Pruned(gone, before, gone_grouped or 0, inside or 0, highest)
