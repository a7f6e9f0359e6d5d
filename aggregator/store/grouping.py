"""The grouping: which story each entry is in, stories opened and merged, storylines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from aggregator.models import (
    EntryGrouped,
    EntryRelated,
    GroupingMark,
    GroupStep,
    StoredEntry,
    StoryMerged,
    StoryOpened,
)
from aggregator.store._base import StoreBase
from aggregator.store.entries import grouping_mark, stored_entries
from aggregator.store.schema import EntryRow, RelatedRow, StoryRow, StoryStatus, utcnow
from aggregator.store.stories import lock_stories

# One executemany for a run of entries placed between two merges.
_PLACE = (
    update(EntryRow)
    .where(EntryRow.id == bindparam("entry"))
    .values(
        story_id=bindparam("story"),
        copy_of=bindparam("original"),
        side_join=bindparam("side_join"),
    )
)


class GroupingMixin(StoreBase):
    def grouping_mark(self) -> GroupingMark:
        with self.session() as s:
            return grouping_mark(s)

    def ungrouped_entries(self) -> list[StoredEntry]:
        with self.session() as s:
            return stored_entries(s, EntryRow.story_id.is_(None), EntryRow.text.is_not(None))

    def grouped_entries(self, since: datetime) -> list[StoredEntry]:
        with self.session() as s:
            return stored_entries(s, EntryRow.story_id.is_not(None), EntryRow.published_at >= since)

    def texts_before(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        # The last ``limit`` ids first, then their texts: sorting the rows with their texts
        # would read every grouped entry's text.
        last = (
            select(EntryRow.id)
            .where(
                EntryRow.story_id.is_not(None),
                EntryRow.copy_of.is_(None),
                EntryRow.text.is_not(None),
                EntryRow.published_at < before,
            )
            .order_by(EntryRow.published_at.desc(), EntryRow.id.desc())
            .limit(limit)
        )
        with self.session() as s:
            rows = s.execute(
                select(EntryRow.title, EntryRow.text)
                .where(EntryRow.id.in_(last.scalar_subquery()))
                .order_by(EntryRow.published_at.desc(), EntryRow.id.desc())
            )
            return [(title, text or "") for title, text in rows]

    def storylines(self, since: datetime) -> dict[str, str]:
        with self.session() as s:
            rows = s.execute(
                select(StoryRow.id, StoryRow.storyline_id).where(
                    StoryRow.last_published >= since, StoryRow.storyline_id.is_not(None)
                )
            )
            return {story: line for story, line in rows if line is not None}

    def record_grouping(self, steps: Sequence[GroupStep]) -> None:
        with self.session.begin() as s:
            lock_stories(s, _touched(steps))
            placed: list[dict[str, Any]] = []
            for step in steps:
                if isinstance(step, StoryOpened):
                    _open_story(s, step.story_id, step.published, step.storyline)
                elif isinstance(step, EntryGrouped):
                    placed.append(
                        {
                            "entry": step.entry_id,
                            "story": step.story_id,
                            "original": step.copy_of,
                            "side_join": step.side_join,
                        }
                    )
                    row = s.get(StoryRow, step.story_id)
                    if row is not None:
                        row.first_published = min(row.first_published, step.published)
                        row.last_published = max(row.last_published, step.published)
                        row.input_hash = None  # to be rewritten, even if we die first
                elif isinstance(step, EntryRelated):
                    _relate(s, step)
                else:
                    _place(s, placed)  # a merge moves every entry placed so far
                    _merge_story(s, step.retired, step.kept)
            _place(s, placed)


def _touched(steps: Sequence[GroupStep]) -> set[str]:
    """The stories the steps change: those entries join or are related to, and merged ones."""
    touched: set[str] = set()
    for step in steps:
        if isinstance(step, EntryGrouped | EntryRelated):
            touched.add(step.story_id)
        elif isinstance(step, StoryMerged):
            touched.update((step.retired, step.kept))
    return touched


def _place(s: Session, placed: list[dict[str, Any]]) -> None:
    if placed:
        s.connection().execute(_PLACE, placed)
        placed.clear()


def _relate(s: Session, step: EntryRelated) -> None:
    """Keep an entry as related coverage of a story; the story is rewritten (its notes may
    change), even if we die first."""
    row = s.get(StoryRow, step.story_id)
    if row is None:  # pragma: no cover - the index compared it: it is stored
        return
    row.input_hash = None
    found = s.get(RelatedRow, (step.story_id, step.entry_id))
    if found is None:
        s.add(RelatedRow(story_id=step.story_id, entry_id=step.entry_id, score=step.score))
    else:
        found.score = max(found.score, step.score)


def _open_story(s: Session, story_id: str, published: datetime, storyline: str) -> None:
    if s.get(StoryRow, story_id) is None:
        s.add(
            StoryRow(
                id=story_id,
                created_at=utcnow(),
                first_published=published,
                last_published=published,
                storyline_id=storyline or story_id,
            )
        )
        s.flush()  # the story row first: entries point at it


def _merge_story(s: Session, retired: str, kept: str) -> None:
    """Fold story ``retired`` into the older ``kept``: entries move, the row stays retired."""
    s.flush()
    s.execute(update(EntryRow).where(EntryRow.story_id == retired).values(story_id=kept))
    old, row = s.get(StoryRow, retired), s.get(StoryRow, kept)
    if old is None or row is None:  # pragma: no cover - both were just in the index
        return
    old.merged_into = kept
    old.merged_at = utcnow()
    old.status = StoryStatus.MERGED  # off the feed: its articles are in the older story now
    old.content_html = None
    row.input_hash = None  # to be rewritten, even if we die before the rewrite stage
    row.first_published = min(row.first_published, old.first_published)
    row.last_published = max(row.last_published, old.last_published)
    s.execute(update(StoryRow).where(StoryRow.merged_into == retired).values(merged_into=kept))
    # What was related to the retired story is related to the story it joined (an entry
    # related to both keeps its higher score).
    for moved in s.scalars(select(RelatedRow).where(RelatedRow.story_id == retired)).all():
        there = s.get(RelatedRow, (kept, moved.entry_id))
        if there is not None:
            there.score = max(there.score, moved.score)
            s.delete(moved)
    s.flush()
    s.execute(update(RelatedRow).where(RelatedRow.story_id == retired).values(story_id=kept))
    # A storyline that began with the retired story now begins with the one it joined.
    line = row.storyline_id or kept
    s.execute(
        update(StoryRow)
        .where(StoryRow.storyline_id.in_((retired, old.storyline_id or retired)))
        .values(storyline_id=line)
    )
