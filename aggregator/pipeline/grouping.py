"""The group stage: assign new articles to stories, merge stories, record attribution."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
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
    log,
)

# The database's grouping, summed up: grouped entries (count, highest id) and retired stories.
# Anything else that groups, merges or prunes changes it, and the kept index is rebuilt.
Mark = tuple[int, int | None, int]


@dataclass
class _KeptIndex:
    """The story index kept between runs of a long-running pipeline (the scheduler), so that
    each run streams only its new entries through it instead of first restoring days of
    history: with thousands of sources, that history is most of the group stage's time."""

    index: cluster.StoryIndex
    since: datetime  # the history it was built from starts here
    mark: Mark  # the database as this index left it
    by_url: dict[str, tuple[int, str, datetime]] = field(default_factory=dict)
    # canonical URL -> (entry id, story id, published) of the first entry seen with it


def _mark(s: Session) -> Mark:
    grouped = s.execute(
        select(func.count(EntryRow.id), func.max(EntryRow.id)).where(EntryRow.story_id.is_not(None))
    ).one()
    retired = s.scalar(select(func.count()).where(StoryRow.merged_into.is_not(None)))
    return (grouped[0] or 0, grouped[1], retired or 0)


class Grouping:
    """The group stage of :class:`~aggregator.pipeline.Pipeline`."""

    _kept_index: _KeptIndex | None = None

    @contextlib.contextmanager
    def keeping_the_index(self, s: Session, older_than: timedelta) -> Iterator[None]:
        """Around our own pruning of entries ``older_than``: beyond the index's history, they
        are not in it, so the kept index stays good and its mark follows the prune."""
        kept = self._kept_index
        keep = kept is not None and older_than > cluster.HISTORY and _mark(s) == kept.mark
        yield
        if kept is not None and keep:
            s.flush()
            kept.mark = _mark(s)

    def _story_index(self, s: Session, since: datetime) -> _KeptIndex:
        """The index as the last run left it, when nothing else has touched the grouping since
        and it reaches back far enough; else one rebuilt from the entries grouped since
        ``since``, which decides like the live stream did."""
        kept, self._kept_index = self._kept_index, None  # until this run has committed
        if kept is not None and since >= kept.since and _mark(s) == kept.mark:
            log.debug("group: story index kept (%d stories)", len(kept.index.stories))
            return kept
        kinds = {src.id: src.kind for src in self.config.sources}
        fresh = _KeptIndex(cluster.StoryIndex(), since, (0, None, 0))
        history = s.scalars(
            select(EntryRow)
            .where(EntryRow.story_id.is_not(None), EntryRow.published_at >= since)
            .order_by(*ENTRY_ORDER)
        )
        restored = 0
        for entry in history:
            fresh.index.restore(
                _cluster_article(entry, kinds.get(entry.source_id, "news")),
                entry.story_id or "",
            )
            if entry.link:
                fresh.by_url.setdefault(
                    canonical_url(entry.link),
                    (entry.id, entry.story_id or "", entry.published_at),
                )
            restored += 1
        log.debug("group: story index rebuilt from %d grouped entries", restored)
        return fresh

    # --- group ---------------------------------------------------------------------------------

    def group(self) -> set[str]:
        """Assign every ungrouped entry to a story; return the ids of the stories touched.

        The story index is the one the last run left (a long-running pipeline), or rebuilt from
        the entries grouped near the pending ones (by published time); the pending entries
        stream through it oldest first. An entry whose
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
            since = pending[0].published_at - cluster.HISTORY
            kept = self._story_index(s, since)
            index, by_url = kept.index, kept.by_url
            kinds = {src.id: src.kind for src in self.config.sources}
            for done, entry in enumerate(pending, start=1):
                art = _cluster_article(entry, kinds.get(entry.source_id, "news"))
                original = by_url.get(canonical_url(entry.link)) if entry.link else None
                if original is not None and original[2] >= since:  # a copy of an entry we have
                    entry.copy_of = original[0]
                    entry.story_id = index.resolve(original[1])
                    index.restore(art, entry.story_id)
                else:
                    if entry.link:
                        by_url[canonical_url(entry.link)] = (
                            entry.id,
                            "",  # set below, once the entry has its story
                            art.published,
                        )
                    found = index.add(art, cluster.story_id_for(entry.source_id, entry.key))
                    if found.opened:
                        self._open_story(s, found.story_id, art.published)
                    entry.copy_of = found.copy_of
                    entry.story_id = found.story_id
                    for retired in found.merged:
                        self._merge_story(s, retired, found.story_id)
                        touched.discard(retired)
                if entry.link and by_url[canonical_url(entry.link)][0] == entry.id:
                    by_url[canonical_url(entry.link)] = (entry.id, entry.story_id, art.published)
                row = s.get(StoryRow, entry.story_id)
                if row is not None:
                    row.first_published = min(row.first_published, art.published)
                    row.last_published = max(row.last_published, art.published)
                touched.add(entry.story_id)
                self.progress("group", done, len(pending), entry.title[:60])
            s.flush()
            kept.mark = _mark(s)
        self._kept_index = kept  # committed: the next run may start from it
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
