"""The rewrite stage: rewrite the stories whose inputs changed, keeping provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from aggregator import extract, related, rewrite
from aggregator.config import ModelSettings, RewriteSettings, Source
from aggregator.lead_image import lead_image
from aggregator.models import (
    Attribution,
    Coverage,
    CoverageNote,
    LeadImage,
    RelatedLink,
    StoredEntry,
    StoryArticle,
    StoryRewrite,
)
from aggregator.pipeline.reports import Progress
from aggregator.rewrite.model import ModelRewriter
from aggregator.store import StoreType
from aggregator.vocab import SIDES, Side, article_kind, side_of


class Rewriting:
    """The rewrite stage: reads a story's articles from the store, rewrites them outside any
    transaction (the model may take seconds), and stores the result in one."""

    def __init__(
        self,
        store: StoreType,
        sources: Sequence[Source],
        options: RewriteSettings,
        model_settings: ModelSettings,
        model: ModelRewriter | None,
        *,
        stop: threading.Event,
        progress: Progress,
        usable_link: Callable[[str], bool],
    ) -> None:
        """``usable_link``: whether a URL passes publishing's checks for a link, which a lead
        image's must pass too (publishing shows no other)."""
        self.store = store
        self.sources = {src.id: src for src in sources}
        self.options = options
        self.model_settings = model_settings
        self.model = model
        self.stop = stop
        self.progress = progress
        self.usable_link = usable_link

    def rewrite(self, story_ids: Iterable[str] | None = None) -> int:
        """Rewrite the stories whose inputs changed; return how many were rewritten.

        Besides ``story_ids``, stories never rewritten and stories whose model rewrite should
        be tried again (a timeout, a 429, a spent budget) are taken, and the stories related to
        any of those (``related_coverage``): their notes may change, and they are rewritten
        only if they did. These are found from the marks the group stage's transaction left
        (a cleared ``input_hash``), so a restart after a crash finds them too; they are looked
        at first, since rewriting a marked story clears the mark they are found by.
        With a model configured, up to ``concurrency`` stories are rewritten at once, and at
        most ``budget`` are sent.
        """
        due = set(story_ids or ()) | self.store.stories_to_rewrite()
        rechecks = self.store.related_stories(due)
        passes = [sorted(rechecks), sorted(due)]
        total = len(rechecks) + len(due)
        if self.model is not None:
            self.model.new_cycle()
        done = n = 0
        for ordered in passes:
            for story_id, changed in zip(ordered, self._rewrite_all(ordered), strict=True):
                done += changed
                n += 1
                self.progress("rewrite", n, total, story_id)
        return done

    def _rewrite_all(self, ordered: Sequence[str]) -> Iterator[bool]:
        """Each story's outcome in order (False once stopped); with a model, up to
        ``concurrency`` at once."""
        if self.model is None:
            yield from (False if self.stop.is_set() else self._rewrite_one(s) for s in ordered)
            return
        with ThreadPoolExecutor(max_workers=self.model_settings.concurrency) as pool:
            yield from pool.map(
                lambda sid: False if self.stop.is_set() else self._rewrite_one(sid), ordered
            )

    def _input_hash(
        self,
        articles: Sequence[StoryArticle],
        notes: Sequence[CoverageNote],
        image: LeadImage | None,
    ) -> str:
        """What a rewrite is made from: the articles, the coverage notes, the rewrite settings
        and the model; and the lead image and the outlets' owners, only when there are some (a
        story without them keeps the hash it had before images and owners were known)."""
        model = self.model_settings
        return _hash(
            json.dumps(
                [
                    [
                        [a.entry_id, a.source_name, a.lean, a.kind, a.title, a.text, a.via]
                        for a in articles
                    ],
                    [[n.code, n.side, n.outlet, n.title, n.link] for n in notes],
                    self.options.summary_words,
                    rewrite.EXTRACTIVE_VERSION,
                    [model.model, model.base_url, rewrite.PROMPT_VERSION] if self.model else None,
                ]
                + ([dataclasses.astuple(image)] if image else [])
                + ([_owners(articles)] if _owners(articles) else [])
            )
        )

    def _rewrite_one(self, story_id: str) -> bool:
        """Rewrite one story if its inputs changed; store it in one transaction.

        The model (if any) is asked outside any transaction. A story stored before 0008 whose
        inputs did not change keeps its stored rewrite and gains its coverage, so that
        publishing can render it (and nothing a reader sees moves).
        """
        inputs = self.store.rewrite_inputs(story_id)
        if inputs is None or not inputs.entries:
            return False
        articles = self._story_articles(inputs.entries)
        notes = self._coverage_notes(story_id, articles)
        image = lead_image(articles, self.usable_link)
        input_hash = self._input_hash(articles, notes, image)
        final = True
        if inputs.input_hash == input_hash and inputs.legacy is not None:
            result = inputs.legacy  # stored before 0008: unchanged, its coverage to be added
        elif inputs.input_hash == input_hash and inputs.rewritten:
            return False
        else:
            result = rewrite.rewrite_story(
                articles, summary_words=self.options.summary_words, notes=notes
            )
            if self.model is not None:
                outcome = self.model.rewrite(input_hash, articles, result, label=story_id)
                result, final = outcome.rewrite, outcome.final
        coverage = rewrite.coverage_of(articles)
        # Every stored article can be reached from the feed: a syndicated copy is not
        # rewritten separately, but keeps its own link, titled with its outlet.
        related = [
            RelatedLink(a.link, a.source_name, a.lean, a.owner) for a in articles if a.link
        ] + [
            RelatedLink(link, name, lean, dict(a.via_owners).get(name, ""))
            for a in articles
            for name, lean, link, _ in a.via
            if link
        ]
        return self.store.save_rewrite(
            story_id,
            StoryRewrite(
                input_hash=input_hash if final else None,  # None: try the model again
                rewrite=result,
                coverage=coverage,
                leans=coverage.leans,
                related=tuple(related),
                attribution=attribution(articles, coverage, result.notes),
                image=image,
            ),
        )

    def _coverage_notes(
        self, story_id: str, articles: Sequence[StoryArticle]
    ) -> tuple[CoverageNote, ...]:
        """Before the story says a side has not covered it: that side's related articles
        (the looser search, ``related.py``), read only when a side is missing from the
        story's firmly joined articles."""
        reached = {side_of(a.lean) for a in articles if not a.side_join}
        if all(side in reached for side in SIDES):
            return ()
        found = [self._story_article(e) for e in self.store.related_entries(story_id)]
        return related.coverage_notes(articles, found)

    def _story_articles(self, entries: Sequence[StoredEntry]) -> list[StoryArticle]:
        """One StoryArticle per original article; copies become its "via" outlets."""
        by_id = {e.id: e for e in entries}

        def original(entry: StoredEntry) -> StoredEntry:
            seen = {entry.id}
            while entry.copy_of in by_id and entry.copy_of not in seen:
                entry = by_id[entry.copy_of]
                seen.add(entry.id)
            return entry

        via: dict[int, list[tuple[str, str, str | None, str]]] = {}
        via_owners: dict[int, dict[str, str]] = {}
        for entry in entries:
            root = original(entry)
            if root is not entry:
                art = self._story_article(entry)
                via.setdefault(root.id, []).append((art.source_name, art.lean, art.link, art.title))
                if art.owner:
                    via_owners.setdefault(root.id, {})[art.source_name] = art.owner
        return [
            dataclasses.replace(
                self._story_article(e),
                via=tuple(via.get(e.id, ())),
                via_owners=tuple(via_owners.get(e.id, {}).items()),
            )
            for e in entries
            if original(e) is e
        ]

    def _story_article(self, entry: StoredEntry) -> StoryArticle:
        src = self.sources.get(entry.source_id)
        owner = ""
        if src is not None:
            name, lean, kind, owner = src.name, src.lean, src.kind, src.owner
        else:  # a source removed from the config: keep what we stored (its owner unknown)
            stored = self.store.source_identity(entry.source_id)
            name, lean, kind = stored or (entry.source_id,) * 3
        text = entry.text or ""
        available = entry.text_available and not (
            entry.extract_error and len(text) < extract.MIN_TEXT_CHARS
        )
        return StoryArticle(
            entry_id=entry.id,
            source_id=entry.source_id,
            source_name=name,
            lean=lean,
            kind=article_kind(kind, entry.link, entry.title),
            title=entry.title,
            link=entry.link,
            published=entry.published,
            text=text,
            text_available=available,
            fetched=entry.fetched,
            image=entry.image,
            side_join=entry.side_join,
            owner=owner,
            image_caption=entry.image_caption,
        )


def attribution(
    articles: Sequence[StoryArticle], coverage: Coverage, notes: Sequence[CoverageNote] = ()
) -> Attribution:
    """Who reported the story first, who covered it, per-side counts and blindspot (one
    side only, and the search found nothing of the other's)."""
    outlets: list[tuple[str | None, str, str, str | None]] = [
        (a.source_id, a.source_name, a.lean, None) for a in articles
    ]
    outlets += [(None, name, lean, a.source_name) for a in articles for name, lean, _, _ in a.via]
    return Attribution(
        first_source_id=next(
            a.source_id for a in articles if a.source_name == coverage.first_source
        ),
        outlets=tuple(outlets),
        count_left=coverage.count(Side.LEFT),
        count_center=coverage.count(Side.CENTER),
        count_right=coverage.count(Side.RIGHT),
        blindspot=related.blindspot_side(coverage.leans, notes) is not None,
    )


def _owners(articles: Sequence[StoryArticle]) -> list[object]:
    """The owners the articles and their copies carry, as the input hash records them; []
    when none is known."""
    if not any(a.owner or a.via_owners for a in articles):
        return []
    return [[a.owner, a.via_owners] for a in articles]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
