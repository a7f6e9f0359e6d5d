"""The group stage: assign new articles to stories, merge stories, record attribution."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from aggregator import cluster, publish
from aggregator.embeddings import Embedder, MiniLMEmbedder, embedding_text
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
from aggregator.store.schema import (
    EntryRow,
    StoryRow,
    utcnow,
)

# The database's grouping, summed up: grouped entries (count, highest id) and retired stories.
# Anything else that groups, merges or prunes changes it, and the kept index is rebuilt.
Mark = tuple[int, int | None, int]
Seen = tuple[int, str, datetime]  # an entry with a link: (entry id, story id, published)
EMBED_AHEAD = 512  # entries embedded in one batch (well inside the embedder's cache)


@dataclass
class _KeptIndex:
    """The story index kept between runs of a long-running pipeline (the scheduler), so that
    each run streams only its new entries through it instead of first restoring days of
    history: with thousands of sources, that history is most of the group stage's time.

    It is rebuilt at least once a day (``cluster.SWEEP_EVERY``), so it never holds more than a
    day's history beyond what a rebuild would, and its memory stays flat.
    """

    index: cluster.StoryIndex
    since: datetime  # the history it was built from starts here
    mark: Mark  # the database as this index left it
    by_url: dict[str, list[Seen]] = field(default_factory=dict)  # canonical URL -> entries

    def original(self, url: str, since: datetime) -> Seen | None:
        """The first entry with this URL inside the history a rebuild would restore."""
        return next((seen for seen in self.by_url.get(url, ()) if seen[2] >= since), None)


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
    def keeping_the_index(self, s: Session, doomed: Sequence[Any]) -> Iterator[None]:
        """Around our own pruning of the entries matching ``doomed``: when none of them is in
        the kept index (all published before its history), the index stays good and its mark
        follows the prune; otherwise the next run rebuilds it."""
        kept, self._kept_index = self._kept_index, None
        if kept is None:
            yield
            return
        grouped = (*doomed, EntryRow.story_id.is_not(None))
        before = _mark(s)
        gone = s.scalar(select(func.count()).where(*grouped)) or 0
        inside = s.scalar(select(func.count()).where(*grouped, EntryRow.published_at >= kept.since))
        yield
        if before == kept.mark and not inside:
            highest = s.scalar(select(func.max(EntryRow.id)).where(EntryRow.story_id.is_not(None)))
            kept.mark = (before[0] - gone, highest, before[2])
            self._kept_index = kept

    def _story_index(self, s: Session, since: datetime) -> tuple[_KeptIndex, Mark]:
        """The index as the last run left it, when nothing else has touched the grouping since
        and its history is less than a day older than ``since``; else one rebuilt from the
        entries grouped since ``since``, which decides like the live stream did. Returned
        with the database's mark now."""
        kept, self._kept_index = self._kept_index, None  # until this run has committed
        mark = _mark(s)
        if (
            kept is not None
            and kept.since <= since < kept.since + cluster.SWEEP_EVERY
            and mark == kept.mark
        ):
            log.debug("group: story index kept (%d stories)", len(kept.index.stories))
            return kept, mark
        fresh = _KeptIndex(cluster.StoryIndex(embedder=self._embedder), since, mark)
        history = s.scalars(
            select(EntryRow)
            .where(EntryRow.story_id.is_not(None), EntryRow.published_at >= since)
            .order_by(*ENTRY_ORDER)
        ).all()
        restored = 0
        lines = dict(
            s.execute(
                select(StoryRow.id, StoryRow.storyline_id).where(
                    StoryRow.last_published >= since, StoryRow.storyline_id.is_not(None)
                )
            ).all()
        )
        for done, entry in enumerate(history):
            self._embed_ahead(history, done)
            fresh.index.restore(
                self._cluster_article(entry),
                entry.story_id or "",
                lines.get(entry.story_id or ""),
                copy=entry.copy_of is not None,
            )
            if entry.link:
                fresh.by_url.setdefault(canonical_url(entry.link), []).append(
                    (entry.id, entry.story_id or "", entry.published_at)
                )
            restored += 1
        log.debug("group: story index rebuilt from %d grouped entries", restored)
        return fresh, mark

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
            kept, before = self._story_index(s, since)
            index = kept.index
            merges = 0
            for done, entry in enumerate(pending, start=1):
                self._embed_ahead(pending, done - 1)
                art = self._cluster_article(entry)
                url = canonical_url(entry.link) if entry.link else None
                original = kept.original(url, since) if url else None
                if original is not None:  # a copy of an entry we have
                    entry.copy_of = original[0]
                    entry.story_id = index.resolve(original[1])
                    index.restore(art, entry.story_id, copy=True)
                else:
                    found = index.add(art, cluster.story_id_for(entry.source_id, entry.key))
                    if found.opened:
                        self._open_story(s, found.story_id, art.published, found.storyline)
                    entry.copy_of = found.copy_of
                    entry.story_id = found.story_id
                    for retired in found.merged:
                        self._merge_story(s, retired, found.story_id)
                        touched.discard(retired)
                        merges += 1
                if url:
                    kept.by_url.setdefault(url, []).append(
                        (entry.id, entry.story_id, art.published)
                    )
                row = s.get(StoryRow, entry.story_id)
                if row is not None:
                    row.first_published = min(row.first_published, art.published)
                    row.last_published = max(row.last_published, art.published)
                touched.add(entry.story_id)
                self.progress("group", done, len(pending), entry.title[:60])
            # What the database holds once this commits, counted rather than read back: under
            # READ COMMITTED a read here could take in another process's grouping unnoticed.
            highest = max(entry.id for entry in pending)
            kept.mark = (before[0] + len(pending), max(before[1] or 0, highest), before[2] + merges)
        self._kept_index = kept  # committed: the next run may start from it
        return touched

    @functools.cached_property
    def _embedder(self) -> Embedder | None:
        """The sentence embedder when ``[grouping] embeddings`` is on (config.py has checked
        the extra is installed); loaded once per pipeline, the model on first use."""
        if not self.config.grouping.embeddings:
            return None
        return MiniLMEmbedder()

    def _embed_ahead(self, entries: Sequence[EntryRow], at: int) -> None:
        """With embeddings on, embed the next ``EMBED_AHEAD`` entries in one batch when the
        stream reaches them: the index then finds each vector in the embedder's cache.
        One text at a time costs 4-8 times the CPU (measured on 2 busy cores)."""
        if self._embedder is None or at % EMBED_AHEAD:
            return
        ahead = [self._cluster_article(e) for e in entries[at : at + EMBED_AHEAD]]
        self._embedder.embed([embedding_text(a.title, a.text) for a in ahead])

    @functools.cached_property
    def _kinds(self) -> dict[str, str]:
        """Source id -> kind, looked up once per entry on the group stage's hot path."""
        return {src.id: src.kind for src in self.config.sources}

    def _cluster_article(self, entry: EntryRow) -> ClusterArticle:
        """The entry as the grouping sees it, with its source's kind (news or opinion)."""
        return ClusterArticle(
            entry_id=entry.id,
            source_id=entry.source_id,
            title=entry.title,
            text=entry.text or "",
            published=entry.published_at,
            kind=self._kinds.get(entry.source_id, "news"),
            fetched=entry.fetched_at,
        )

    def _open_story(
        self, s: Session, story_id: str, published: datetime, storyline: str = ""
    ) -> None:
        if s.get(StoryRow, story_id) is None:
            row = StoryRow(
                id=story_id,
                created_at=utcnow(),
                first_published=published,
                last_published=published,
                storyline_id=storyline or story_id,
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
        old.merged_at = utcnow()
        old.content_html = None  # off the feed: its articles are in the older story now
        row.first_published = min(row.first_published, old.first_published)
        row.last_published = max(row.last_published, old.last_published)
        s.execute(update(StoryRow).where(StoryRow.merged_into == retired).values(merged_into=kept))
        # A storyline that began with the retired story now begins with the one it joined.
        line = row.storyline_id or kept
        s.execute(
            update(StoryRow)
            .where(StoryRow.storyline_id.in_((retired, old.storyline_id or retired)))
            .values(storyline_id=line)
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
