"""The group stage: assign new articles to stories, merge stories, record attribution."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aggregator import cluster, publish
from aggregator.db import (
    EntryRow,
    StoryRow,
    utcnow,
)
from aggregator.identity import canonical_url
from aggregator.models import (
    ClusterArticle,
    Coverage,
    StoryArticle,
)
from aggregator.pipeline.reports import (
    ENTRY_ORDER,
)


class Grouping:
    """The group stage of :class:`~aggregator.pipeline.Pipeline`."""

    # --- group ---------------------------------------------------------------------------------

    def group(self) -> set[str]:
        """Assign every ungrouped entry to a story; return the ids of the stories touched.

        The story index is rebuilt from the entries grouped near the pending ones (by published
        time), then the pending entries stream through it oldest first. An entry whose
        canonical URL or near-duplicate text repeats an earlier entry is marked ``copy_of`` it
        and joins its story. When two stories turn out to be one, the newer folds into the
        older: its entries move, its row keeps ``merged_into`` so the id is never reused.
        """
        touched: set[str] = set()
        with self.session.begin() as s:
            pending = list(
                s.scalars(
                    select(EntryRow)
                    .where(EntryRow.story_id.is_(None), EntryRow.text.is_not(None))
                    .order_by(*ENTRY_ORDER)
                )
            )
            if not pending:
                return touched
            index = cluster.StoryIndex()
            kinds = {src.id: src.kind for src in self.config.sources}
            by_url: dict[str, EntryRow] = {}
            since = pending[0].published_at - cluster.HISTORY
            history = s.scalars(
                select(EntryRow)
                .where(EntryRow.story_id.is_not(None), EntryRow.published_at >= since)
                .order_by(*ENTRY_ORDER)
            )
            for entry in history:
                index.restore(
                    _cluster_article(entry, kinds.get(entry.source_id, "news")),
                    entry.story_id or "",
                )
                if entry.link:
                    by_url.setdefault(canonical_url(entry.link), entry)
            for done, entry in enumerate(pending, start=1):
                art = _cluster_article(entry, kinds.get(entry.source_id, "news"))
                original = by_url.get(canonical_url(entry.link)) if entry.link else None
                if original is not None and original.story_id:
                    entry.copy_of = original.id
                    entry.story_id = index.resolve(original.story_id)
                    index.restore(art, entry.story_id)
                else:
                    if entry.link:
                        by_url[canonical_url(entry.link)] = entry
                    found = index.add(art, cluster.story_id_for(entry.source_id, entry.key))
                    if found.opened:
                        self._open_story(s, found.story_id, art.published)
                    entry.copy_of = found.copy_of
                    entry.story_id = found.story_id
                    for retired in found.merged:
                        self._merge_story(s, retired, found.story_id)
                        touched.discard(retired)
                row = s.get(StoryRow, entry.story_id)
                if row is not None:
                    row.first_published = min(row.first_published, art.published)
                    row.last_published = max(row.last_published, art.published)
                touched.add(entry.story_id)
                self.progress("group", done, len(pending), entry.title[:60])
        return touched

    def _open_story(self, s: Session, story_id: str, published: datetime) -> None:
        if s.get(StoryRow, story_id) is None:
            row = StoryRow(
                id=story_id,
                created_at=utcnow(),
                first_published=published,
                last_published=published,
            )
            s.add(row)
            s.flush()  # the story row first: entries point at it

    def _merge_story(self, s: Session, retired: str, kept: str) -> None:
        """Fold story ``retired`` into the older ``kept``: entries move, the row stays retired."""
        s.flush()
        s.execute(update(EntryRow).where(EntryRow.story_id == retired).values(story_id=kept))
        old, row = s.get(StoryRow, retired), s.get(StoryRow, kept)
        if old is None or row is None:  # pragma: no cover - both were just in the index
            return
        old.merged_into = kept
        old.content_html = None  # off the feed: its articles are in the older story now
        row.first_published = min(row.first_published, old.first_published)
        row.last_published = max(row.last_published, old.last_published)
        s.execute(update(StoryRow).where(StoryRow.merged_into == retired).values(merged_into=kept))


def _cluster_article(entry: EntryRow, kind: str = "news") -> ClusterArticle:
    return ClusterArticle(
        entry_id=entry.id,
        source_id=entry.source_id,
        title=entry.title,
        text=entry.text or "",
        published=entry.published_at,
        kind=kind,
        fetched=entry.fetched_at,
    )


def _record_attribution(
    story: StoryRow, articles: Sequence[StoryArticle], coverage: Coverage
) -> None:
    """Store who reported the story first, who covered it, per-side counts and blindspot."""
    story.first_source_id = next(
        a.source_id for a in articles if a.source_name == coverage.first_source
    )
    outlets = [[a.source_id, a.source_name, a.lean, None] for a in articles]
    outlets += [[None, name, lean, a.source_name] for a in articles for name, lean, _ in a.via]
    story.outlets_json = json.dumps(outlets)
    story.count_left = coverage.count("left")
    story.count_center = coverage.count("center")
    story.count_right = coverage.count("right")
    story.blindspot = publish.blindspot_side(coverage.leans) is not None
