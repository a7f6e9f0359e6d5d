"""The rewrite stage: rewrite the stories whose inputs changed, keeping provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator import extract, publish, rewrite
from aggregator.models import (
    StoryArticle,
)
from aggregator.pipeline.grouping import _record_attribution
from aggregator.pipeline.reports import (
    ENTRY_ORDER,
)
from aggregator.store import schema as db
from aggregator.store.schema import (
    EntryRow,
    SourceRow,
    StoryRow,
    utcnow,
)


class Rewriting:
    """The rewrite stage of :class:`~aggregator.pipeline.Pipeline`."""

    # --- rewrite -------------------------------------------------------------------------------

    def rewrite(self, story_ids: Iterable[str] | None = None) -> int:
        """Rewrite the stories whose inputs changed; return how many were rewritten.

        Besides ``story_ids``, stories never rewritten and stories whose model rewrite should
        be tried again (a timeout, a 429, a spent budget) are taken. With a model configured,
        up to ``concurrency`` stories are rewritten at once, and at most ``budget`` are sent.
        """
        with self.session() as s:
            ids = set(story_ids or ())
            ids |= set(
                s.scalars(
                    select(StoryRow.id).where(
                        StoryRow.rewrite_json.is_(None) | StoryRow.input_hash.is_(None)
                    )
                )
            )
        ordered = sorted(ids)
        if self.model is None:
            done = 0
            for n, story_id in enumerate(ordered, start=1):
                if self.stop.is_set():
                    break
                done += self._rewrite_one(story_id)
                self.progress("rewrite", n, len(ordered), story_id)
            return done
        self.model.new_cycle()
        with ThreadPoolExecutor(max_workers=self.config.model.concurrency) as pool:
            results = pool.map(
                lambda sid: False if self.stop.is_set() else self._rewrite_one(sid), ordered
            )
            done = 0
            for n, (story_id, changed) in enumerate(zip(ordered, results, strict=True), start=1):
                done += changed
                self.progress("rewrite", n, len(ordered), story_id)
        return done

    def _input_hash(self, articles: Sequence[StoryArticle]) -> str:
        """What a rewrite is made from: the articles, the rewrite settings and the model."""
        model = self.config.model
        return _hash(
            json.dumps(
                [
                    [
                        [a.entry_id, a.source_name, a.lean, a.kind, a.title, a.text, a.via]
                        for a in articles
                    ],
                    self.config.rewrite.summary_words,
                    rewrite.EXTRACTIVE_VERSION,
                    [model.model, model.base_url, rewrite.PROMPT_VERSION] if self.model else None,
                ]
            )
        )

    def _rewrite_one(self, story_id: str) -> bool:
        """Rewrite one story if its inputs changed; store it in one transaction.

        The model (if any) is asked outside any transaction; the story's ``updated`` time
        moves only when what readers see changed.
        """
        with self.session() as s:
            story = s.get(StoryRow, story_id)
            if story is None:
                return False
            entries = list(
                s.scalars(
                    select(EntryRow).where(EntryRow.story_id == story_id).order_by(*ENTRY_ORDER)
                )
            )
            if not entries:
                return False
            articles = self._story_articles(s, entries)
            input_hash = self._input_hash(articles)
            if story.input_hash == input_hash and story.rewrite_json:
                return False
        result = rewrite.rewrite_story(articles, summary_words=self.config.rewrite.summary_words)
        final = True
        if self.model is not None:
            outcome = self.model.rewrite(input_hash, articles, result, label=story_id)
            result, final = outcome.rewrite, outcome.final
        coverage = rewrite.coverage_of(articles)
        content_html = publish.render_story_html(result, coverage)
        # Every stored article can be reached from the feed: a syndicated copy is not
        # rewritten separately, but keeps its own link, titled with its outlet.
        related = [
            {"url": a.link, "outlet": a.source_name, "lean": a.lean} for a in articles if a.link
        ] + [
            {"url": link, "outlet": name, "lean": lean}
            for a in articles
            for name, lean, link in a.via
            if link
        ]
        content_hash = _hash(json.dumps([result.headline, result.summary, content_html, related]))
        with self.session.begin() as s:
            story = s.get(StoryRow, story_id)
            if story is None:  # pruned meanwhile
                return False
            story.input_hash = input_hash if final else None  # None: try the model again
            story.rewrite_json = db.rewrite_to_json(result)
            story.headline = result.headline
            story.summary = result.summary
            story.content_html = content_html
            story.leans_json = json.dumps(list(coverage.leans))
            story.related_json = json.dumps(related)
            _record_attribution(story, articles, coverage)
            if story.content_hash != content_hash:
                story.content_hash = content_hash
                story.updated_at = utcnow()
            return True

    def _story_articles(self, s: Session, entries: list[EntryRow]) -> list[StoryArticle]:
        """One StoryArticle per original article; copies become its "via" outlets."""
        by_id = {e.id: e for e in entries}

        def original(entry: EntryRow) -> EntryRow:
            seen = {entry.id}
            while entry.copy_of in by_id and entry.copy_of not in seen:
                entry = by_id[entry.copy_of]
                seen.add(entry.id)
            return entry

        via: dict[int, list[tuple[str, str, str | None]]] = {}
        for entry in entries:
            root = original(entry)
            if root is not entry:
                art = self._story_article(s, entry)
                via.setdefault(root.id, []).append((art.source_name, art.lean, art.link))
        return [
            dataclasses.replace(self._story_article(s, e), via=tuple(via.get(e.id, ())))
            for e in entries
            if original(e) is e
        ]

    def _story_article(self, s: Session, entry: EntryRow) -> StoryArticle:
        try:
            src = self.config.source(entry.source_id)
            name, lean, kind = src.name, src.lean, src.kind
        except KeyError:  # a source removed from the config: keep what we stored
            row = s.get(SourceRow, entry.source_id)
            name, lean, kind = (row.name, row.lean, row.kind) if row else (entry.source_id,) * 3
        text = entry.text or ""
        available = entry.text_available is not False and not (
            entry.extract_error and len(text) < extract.MIN_TEXT_CHARS
        )
        return StoryArticle(
            entry_id=entry.id,
            source_id=entry.source_id,
            source_name=name,
            lean=lean,
            kind=kind,
            title=entry.title,
            link=entry.link,
            published=entry.published_at,
            text=text,
            text_available=available,
            fetched=entry.fetched_at,
        )


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
