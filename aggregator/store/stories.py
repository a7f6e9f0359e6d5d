"""Stories: their rewrites, what is published, what was merged away."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from aggregator.models import (
    PublishedStory,
    RelatedLink,
    RetiredStory,
    RewriteInputs,
    StoredEntry,
    StorylineEvent,
    StoryRewrite,
)
from aggregator.store._base import StoreBase
from aggregator.store.entries import stored_entries
from aggregator.store.schema import (
    EntryRow,
    RelatedRow,
    StoryRow,
    StoryStatus,
    coverage_from_json,
    coverage_to_json,
    image_from_json,
    image_to_json,
    notes_from_json,
    notes_to_json,
    rewrite_from_json,
    rewrite_to_json,
)

_CHUNK = 500  # ids in one IN (...): well inside every backend's limit on parameters


class StoriesMixin(StoreBase):
    def count_stories(self, *, live: bool = False) -> int:
        query = select(func.count()).select_from(StoryRow)
        if live:
            query = query.where(StoryRow.merged_into.is_(None))
        with self.session() as s:
            return s.scalar(query) or 0

    def published_stories(self, limit: int | None = None) -> list[PublishedStory]:
        with self.session() as s:
            query = (
                select(StoryRow)
                .where(StoryRow.status == StoryStatus.READY)
                .order_by(StoryRow.last_published.desc(), StoryRow.id)
            )
            if limit is not None:
                query = query.limit(limit)
            rows = list(s.scalars(query))
            lines: dict[str, list[StorylineEvent]] = {}
            wanted = {row.storyline_id for row in rows if row.storyline_id}
            if wanted:
                events = s.execute(
                    select(
                        StoryRow.storyline_id,
                        StoryRow.id,
                        StoryRow.headline,
                        StoryRow.first_published,
                    )
                    .where(StoryRow.storyline_id.in_(wanted), StoryRow.status == StoryStatus.READY)
                    .order_by(StoryRow.first_published, StoryRow.id)
                )
                for line_id, sid, headline, when in events:
                    lines.setdefault(line_id or "", []).append(
                        StorylineEvent(sid, headline or "", when)
                    )
            stories = []
            for row in rows:
                line = lines.get(row.storyline_id or "", [])
                place = next((n for n, e in enumerate(line) if e.id == row.id), 0)
                stories.append(
                    PublishedStory(
                        id=row.id,
                        headline=row.headline or "",
                        summary=row.summary or "",
                        content_html="" if row.coverage_json else row.content_html or "",
                        published=row.first_published,
                        updated=row.updated_at or row.first_published,
                        leans=tuple(json.loads(row.leans_json or "[]")),
                        related=tuple(
                            RelatedLink(**r) for r in json.loads(row.related_json or "[]")
                        ),
                        storyline_id=(row.storyline_id or "") if len(line) > 1 else "",
                        earlier=tuple(line[:place]),
                        later=tuple(line[place + 1 :]),
                        notes=notes_from_json(row.notes_json),
                        image=image_from_json(row.image_json),
                        rewrite=rewrite_from_json(row.rewrite_json)
                        if row.coverage_json and row.rewrite_json
                        else None,
                        coverage=coverage_from_json(row.coverage_json)
                        if row.coverage_json
                        else None,
                        content_hash=row.content_hash,
                    )
                )
            return stories

    def record_shown(self, shown: Mapping[str, str], at: datetime) -> None:
        with self.session.begin() as s:
            lock_stories(s, shown)
            for story_id, content_hash in sorted(shown.items()):
                s.execute(
                    update(StoryRow)
                    .where(StoryRow.id == story_id)
                    .values(content_hash=content_hash, updated_at=at)
                )

    def retired_stories(self, since: datetime) -> list[RetiredStory]:
        kept = aliased(StoryRow)
        with self.session() as s:
            rows = s.execute(
                select(StoryRow.id, StoryRow.merged_into, kept.headline, StoryRow.merged_at)
                .join(kept, kept.id == StoryRow.merged_into)
                .where(StoryRow.merged_at >= since, kept.status == StoryStatus.READY)
                .order_by(StoryRow.merged_at.desc(), StoryRow.id)
            ).all()
        return [
            RetiredStory(sid, into or "", headline or "", when)
            for sid, into, headline, when in rows
            if when is not None
        ]

    # --- rewriting -----------------------------------------------------------------------------

    def stories_to_rewrite(self) -> set[str]:
        with self.session() as s:
            return set(
                s.scalars(
                    select(StoryRow.id).where(
                        StoryRow.rewrite_json.is_(None)
                        | StoryRow.input_hash.is_(None)
                        | (
                            (StoryRow.status == StoryStatus.READY)
                            & StoryRow.coverage_json.is_(None)
                        )
                    )
                )
            )

    def rewrite_inputs(self, story_id: str) -> RewriteInputs | None:
        with self.session() as s:
            story = s.get(StoryRow, story_id)
            if story is None:
                return None
            entries = stored_entries(s, EntryRow.story_id == story_id)
            legacy = None
            if story.rewrite_json and not story.coverage_json:
                legacy = rewrite_from_json(story.rewrite_json)
            return RewriteInputs(story.input_hash, bool(story.rewrite_json), tuple(entries), legacy)

    def related_stories(self, story_ids: Collection[str]) -> set[str]:
        wanted = sorted(story_ids)
        found: set[str] = set()
        with self.session() as s:
            for at in range(0, len(wanted), _CHUNK):
                chunk = wanted[at : at + _CHUNK]
                # the stories of the entries related to these ...
                theirs = (
                    select(EntryRow.story_id)
                    .join(RelatedRow, RelatedRow.entry_id == EntryRow.id)
                    .where(RelatedRow.story_id.in_(chunk))
                )
                # ... and the stories these stories' entries are related to
                ours = (
                    select(RelatedRow.story_id)
                    .join(EntryRow, EntryRow.id == RelatedRow.entry_id)
                    .where(EntryRow.story_id.in_(chunk))
                )
                found |= {f for f in s.scalars(theirs) if f} | set(s.scalars(ours))
            found -= set(wanted)
            live = sorted(found)
            return {
                sid
                for at in range(0, len(live), _CHUNK)
                for sid in s.scalars(
                    select(StoryRow.id).where(
                        StoryRow.id.in_(live[at : at + _CHUNK]), StoryRow.merged_into.is_(None)
                    )
                )
            }

    def related_entries(self, story_id: str) -> list[StoredEntry]:
        with self.session() as s:
            scores: dict[int, float] = {}
            # entries found related to this story ...
            direct = select(RelatedRow.entry_id, RelatedRow.score).where(
                RelatedRow.story_id == story_id
            )
            for entry_id, score in s.execute(direct):
                scores[entry_id] = max(score, scores.get(entry_id, 0.0))
            # ... and the entries of the stories one of its own entries was found related to
            back = (
                select(EntryRow.id, RelatedRow.score)
                .join(RelatedRow, EntryRow.story_id == RelatedRow.story_id)
                .where(
                    RelatedRow.entry_id.in_(
                        select(EntryRow.id).where(EntryRow.story_id == story_id)
                    )
                )
            )
            for entry_id, score in s.execute(back):
                scores[entry_id] = max(score, scores.get(entry_id, 0.0))
            if not scores:
                return []
            found = stored_entries(
                s,
                EntryRow.id.in_(list(scores)),
                EntryRow.story_id.is_not(None),
                EntryRow.story_id != story_id,
            )
        found.sort(key=lambda e: (-scores[e.id], e.published, e.id))
        return found

    def save_rewrite(self, story_id: str, rewrite: StoryRewrite) -> bool:
        with self.session.begin() as s:
            story = s.get(StoryRow, story_id)
            if story is None:  # pruned meanwhile
                return False
            story.input_hash = rewrite.input_hash
            story.rewrite_json = rewrite_to_json(rewrite.rewrite)
            story.headline = rewrite.rewrite.headline
            story.summary = rewrite.rewrite.summary
            story.coverage_json = coverage_to_json(rewrite.coverage)
            story.content_html = None  # rendered at every publish from now on
            story.status = StoryStatus.READY
            story.leans_json = json.dumps(list(rewrite.leans))
            story.related_json = json.dumps([dataclasses.asdict(r) for r in rewrite.related])
            credit = rewrite.attribution
            story.first_source_id = credit.first_source_id
            story.outlets_json = json.dumps(credit.outlets)
            story.count_left = credit.count_left
            story.count_center = credit.count_center
            story.count_right = credit.count_right
            story.blindspot = credit.blindspot
            story.notes_json = notes_to_json(rewrite.rewrite.notes)
            story.image_json = image_to_json(rewrite.image)
            return True


LOCK_BATCH = 1000  # story ids per locking statement


def lock_stories(s: Session, story_ids: Collection[str]) -> None:
    """Lock the stored stories a transaction will change, in id order, before it changes any.
    Every transaction that changes several stories takes their rows so, in that one order
    (the grouping's, publishing's ``record_shown``), so two of them running at once
    (a worker's group task beside its publish task) wait for each other instead of
    deadlocking, which PostgreSQL ends by failing one. SQLite locks the whole file instead."""
    if s.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(story_ids)
    for start in range(0, len(ordered), LOCK_BATCH):
        batch = ordered[start : start + LOCK_BATCH]
        s.execute(
            select(StoryRow.id)
            .where(StoryRow.id.in_(batch))
            .order_by(StoryRow.id)
            .with_for_update()
        )
