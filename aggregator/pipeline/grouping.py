"""The group stage: assign new articles to stories, merge stories."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aggregator import cluster, related
from aggregator.config import GroupingSettings, Source
from aggregator.embeddings import Embedder, MiniLMEmbedder, embedding_text
from aggregator.identity import canonical_url
from aggregator.models import (
    ClusterArticle,
    EntryGrouped,
    GroupingMark,
    GroupStep,
    Pruned,
    StoredEntry,
    StoryMerged,
    StoryOpened,
)
from aggregator.pipeline.reports import Progress, log
from aggregator.store import StoreType
from aggregator.vocab import article_kind

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
    mark: GroupingMark  # the database as this index left it
    by_url: dict[str, list[Seen]] = field(default_factory=dict)  # canonical URL -> entries

    def original(self, url: str, since: datetime) -> Seen | None:
        """The first entry with this URL inside the history a rebuild would restore."""
        return next((seen for seen in self.by_url.get(url, ()) if seen[2] >= since), None)


class Grouping:
    """The group stage: decides in memory (``cluster.StoryIndex``), the store records it."""

    def __init__(
        self,
        store: StoreType,
        sources: Sequence[Source],
        settings: GroupingSettings,
        *,
        progress: Progress,
    ) -> None:
        self.store = store
        self.embeddings = settings.embeddings
        self.progress = progress
        # Source id -> kind and side, looked up once per entry on the group stage's hot path.
        self._kinds = {src.id: src.kind for src in sources}
        self._sides = {src.id: src.side for src in sources}
        self.kept_index: _KeptIndex | None = None

    # --- the kept index around a prune ---------------------------------------------------------

    def take_index(self) -> _KeptIndex | None:
        """The kept index, let go of while someone else (a prune) changes the grouping."""
        kept, self.kept_index = self.kept_index, None
        return kept

    def after_prune(self, kept: _KeptIndex | None, pruned: Pruned) -> None:
        """After our own prune: when none of the grouped entries it removed is in the kept
        index (all published before its history), the index stays good and its mark follows
        the prune; otherwise the next run rebuilds it."""
        before = pruned.mark_before
        if kept is None or before is None or before != kept.mark or pruned.grouped_inside:
            return
        kept.mark = (before[0] - pruned.grouped_gone, pruned.highest_grouped, before[2])
        self.kept_index = kept

    def _story_index(self, since: datetime) -> tuple[_KeptIndex, GroupingMark]:
        """The index as the last run left it, when nothing else has touched the grouping since
        and its history is less than a day older than ``since``; else one rebuilt from the
        entries grouped since ``since``, which decides like the live stream did. Returned
        with the database's mark now."""
        kept = self.take_index()  # until this run has committed
        mark = self.store.grouping_mark()
        if (
            kept is not None
            and kept.since <= since < kept.since + cluster.SWEEP_EVERY
            and mark == kept.mark
        ):
            log.debug("group: story index kept (%d stories)", len(kept.index.stories))
            return kept, mark
        fresh = _KeptIndex(cluster.StoryIndex(embedder=self._embedder), since, mark)
        earlier = self.store.texts_before(since, cluster.LEARN_BEFORE)
        for title, text in earlier:
            fresh.index.learn(title, text)
        history = self.store.grouped_entries(since)
        lines = self.store.storylines(since)
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
                    (entry.id, entry.story_id or "", entry.published)
                )
        log.debug(
            "group: story index rebuilt from %d grouped entries (%d before them learnt)",
            len(history),
            len(earlier),
        )
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
        The decisions are recorded in one transaction.
        """
        touched: set[str] = set()
        pending = self.store.ungrouped_entries()
        if not pending:
            return touched
        since = pending[0].published - cluster.HISTORY
        kept, before = self._story_index(since)
        index = kept.index
        steps: list[GroupStep] = []
        merges = 0
        for done, entry in enumerate(pending, start=1):
            self._embed_ahead(pending, done - 1)
            art = self._cluster_article(entry)
            url = canonical_url(entry.link) if entry.link else None
            original = kept.original(url, since) if url else None
            if original is not None:  # a copy of an entry we have
                story_id = index.resolve(original[1])
                index.restore(art, story_id, copy=True)
                steps.append(EntryGrouped(entry.id, story_id, original[0], art.published))
            else:
                found = index.add(art, cluster.story_id_for(entry.source_id, entry.key))
                story_id = found.story_id
                if found.opened:
                    steps.append(StoryOpened(story_id, art.published, found.storyline))
                steps.append(
                    EntryGrouped(entry.id, story_id, found.copy_of, art.published, found.completed)
                )
                for retired in found.merged:
                    steps.append(StoryMerged(retired, story_id))
                    touched.discard(retired)
                    merges += 1
                # The stories it is loosely related to: their "not covered" claims are
                # searched again (the looser search behind them, ``related.py``).
                near = [(index.resolve(sid), p) for sid, p in found.near]
                for step in related.related_steps(entry.id, story_id, near):
                    steps.append(step)
                    touched.add(step.story_id)
            if url:
                kept.by_url.setdefault(url, []).append((entry.id, story_id, art.published))
            touched.add(story_id)
            self.progress("group", done, len(pending), entry.title[:60])
        # The stories related to those touched are not returned: the rewrite stage finds them
        # from what this transaction marks, which a restart after a crash finds too.
        self.store.record_grouping(steps)
        # What the database holds now, counted rather than read back: under READ COMMITTED a
        # read could take in another process's grouping unnoticed.
        highest = max(entry.id for entry in pending)
        kept.mark = (before[0] + len(pending), max(before[1] or 0, highest), before[2] + merges)
        self.kept_index = kept  # committed: the next run may start from it
        return touched

    @functools.cached_property
    def _embedder(self) -> Embedder | None:
        """The sentence embedder when ``[grouping] embeddings`` is on (the configuration has
        checked the extra is installed); loaded once per pipeline, the model on first use."""
        if not self.embeddings:
            return None
        return MiniLMEmbedder()

    def _embed_ahead(self, entries: Sequence[StoredEntry], at: int) -> None:
        """With embeddings on, embed the next ``EMBED_AHEAD`` entries in one batch when the
        stream reaches them: the index then finds each vector in the embedder's cache.
        One text at a time costs 4-8 times the CPU (measured on 2 busy cores)."""
        if self._embedder is None or at % EMBED_AHEAD:
            return
        ahead = [self._cluster_article(e) for e in entries[at : at + EMBED_AHEAD]]
        self._embedder.embed([embedding_text(a.title, a.text) for a in ahead])

    def _cluster_article(self, entry: StoredEntry) -> ClusterArticle:
        """The entry as the grouping sees it, with its kind (news or opinion: its source's, or
        opinion where its outlet files it so, ``vocab.article_kind``) and its source's side
        (a story none of whose outlets is of its side may take it below the join threshold)."""
        return ClusterArticle(
            entry_id=entry.id,
            source_id=entry.source_id,
            title=entry.title,
            text=entry.text or "",
            published=entry.published,
            kind=article_kind(self._kinds.get(entry.source_id, "news"), entry.link, entry.title),
            fetched=entry.fetched,
            side=self._sides.get(entry.source_id),
        )
