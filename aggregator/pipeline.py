"""One cycle: fetch -> parse -> extract -> group -> rewrite -> publish, with the database between.

This is the only module that knows the order of the stages and the only one that talks to the
database. Each stage commits its own work in short transactions (one source, one batch of
groupings, one story), so a crash mid-cycle loses nothing already committed and never leaves
half a story; network I/O happens outside transactions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from aggregator import cluster, db, extract, publish, rewrite
from aggregator.config import Config, Source
from aggregator.db import EntryRow, FeedRow, PollRow, SourceRow, StageRow, StoryRow, utcnow
from aggregator.fetch import Fetcher, user_agent
from aggregator.identity import canonical_url
from aggregator.models import (
    ClusterArticle,
    Coverage,
    FeedEntry,
    FetchResult,
    PublishedStory,
    RelatedLink,
    SourceStatus,
    StoryArticle,
    Validators,
)
from aggregator.parse import parse_feed, strip_html
from aggregator.publish import websub
from aggregator.rewrite.model import ModelRewriter

log = logging.getLogger("aggregator")

FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
STAGES = ("fetch", "extract", "group", "rewrite", "publish")

Progress = Callable[[str, int, int, str], None]


def _no_progress(stage: str, done: int, total: int, detail: str) -> None:
    return None


@dataclass
class SourceResult:
    """What one poll of one source came to, in words for the operator."""

    source_id: str
    name: str
    outcome: str  # new, unchanged, not-modified, error
    new_entries: int = 0
    error: str | None = None


@dataclass
class CycleReport:
    sources: list[SourceResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    new_entries: int = 0
    stories: int = 0
    rewritten: int = 0
    feed_path: Path | None = None

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.sources if r.outcome == "error"]

    def summary(self) -> list[str]:
        """The end-of-cycle summary: where the feed is, what changed, what failed, how long."""
        lines = [f"Feed written: {self.feed_path}"] if self.feed_path else []
        ok = len(self.sources) - len(self.failed)
        lines.append(
            f"Sources: {ok} ok, {len(self.failed)} failing; new entries: {self.new_entries}; "
            f"stories: {self.stories} ({self.rewritten} rewritten)"
        )
        lines += [f"  failing: {r.source_id} ({r.name}): {r.error}" for r in self.failed]
        if self.seconds:
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
            lines.append(f"Seconds per stage: {stages}")
        return lines


@dataclass(frozen=True)
class Health:
    """The service's health as /healthz reports it; ``problems`` empty means healthy."""

    last_publish: datetime | None
    publish_age: float | None  # seconds
    failing: list[SourceStatus]
    problems: list[str]


@dataclass(frozen=True)
class Metrics:
    """Counters and timings for /metrics."""

    polls: dict[str, int]  # by outcome
    entries: int
    stories: int
    stages: dict[str, tuple[float, float, int, datetime]]  # last s, total s, runs, last run
    failing_sources: int
    sources: int


class Pipeline:
    """The stages, run against one database and one configuration."""

    def __init__(
        self,
        config: Config,
        engine: Engine | None = None,
        *,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.settings = config.settings
        self.engine = engine or db.connect(config.db_url)
        self.session = db.session_factory(self.engine)
        self.progress = progress or _no_progress
        self.stop = stop or threading.Event()
        self.model = ModelRewriter(config.model) if config.model.enabled else None
        self._sync_sources()

    # --- set-up --------------------------------------------------------------------------------

    def fetcher(self) -> Fetcher:
        return Fetcher(
            timeout=self.settings.timeout,
            max_redirects=self.settings.max_redirects,
            allow_private_hosts=self.config.allow_private_hosts,
            agent=user_agent(self.settings.site_url),
        )

    def _sync_sources(self) -> None:
        """Make the sources table match the configuration (names and leans may change)."""
        with self.session.begin() as s:
            for src in self.config.sources:
                row = s.get(SourceRow, src.id)
                if row is None:
                    s.add(SourceRow(id=src.id, name=src.name, lean=src.lean, kind=src.kind))
                else:
                    row.name, row.lean, row.kind = src.name, src.lean, src.kind
                for url in src.feeds:
                    feed = s.get(FeedRow, url)
                    if feed is None:
                        s.add(FeedRow(url=url, source_id=src.id))
                    elif feed.source_id != src.id:
                        feed.source_id = src.id

    # --- fetch and parse -----------------------------------------------------------------------

    def poll(self, sources: Sequence[Source] | None = None) -> list[SourceResult]:
        """Fetch, parse and store every given source (default: all enabled ones)."""
        sources = self.config.enabled_sources if sources is None else sources
        results = []
        with self.fetcher() as fetcher:
            for done, src in enumerate(sources, start=1):
                if self.stop.is_set():
                    break
                result = self.poll_source(fetcher, src)
                results.append(result)
                detail = f"{src.id}: {result.outcome}"
                if result.error:
                    detail += f" ({result.error})"
                elif result.new_entries:
                    detail += f" (+{result.new_entries})"
                self.progress("fetch", done, len(sources), detail)
        return results

    def poll_source(self, fetcher: Fetcher, src: Source) -> SourceResult:
        """Poll one source's feeds; one transaction stores its entries, polls and health."""
        with self.session() as s:
            validators = {
                url: Validators(row.etag, row.last_modified) if row else Validators()
                for url in src.feeds
                for row in [s.get(FeedRow, url)]
            }
        fetched: list[tuple[str, datetime, FetchResult]] = []
        for url in src.feeds:
            started = utcnow()
            fetched.append(
                (
                    url,
                    started,
                    fetcher.get(
                        url,
                        validators[url],
                        max_bytes=self.settings.max_feed_bytes,
                        accept=FEED_ACCEPT,
                    ),
                )
            )

        errors: list[str] = []
        new_total = 0
        outcomes: list[str] = []
        with self.session.begin() as s:
            now = utcnow()
            for url, started, res in fetched:
                poll = PollRow(
                    source_id=src.id,
                    feed_url=url,
                    started_at=started,
                    seconds=res.elapsed,
                    http_status=res.status,
                    outcome="error",
                )
                s.add(poll)
                feed_row = s.get(FeedRow, url)
                if res.error:
                    poll.error = res.error
                elif res.not_modified:
                    poll.outcome = "not-modified"
                else:
                    parsed = parse_feed(
                        res.content, url=res.final_url, content_type=res.content_type
                    )
                    if parsed.error:
                        poll.error = parsed.error
                    else:
                        new = self._store_entries(s, src, parsed.entries, now)
                        poll.new_entries = new
                        poll.outcome = "new" if new else "unchanged"
                        new_total += new
                        if feed_row is not None:
                            feed_row.etag = res.validators.etag
                            feed_row.last_modified = res.validators.last_modified
                if feed_row is not None:
                    feed_row.last_poll_at = now
                outcomes.append(poll.outcome)
                if poll.error:
                    errors.append(poll.error if len(src.feeds) == 1 else f"{url}: {poll.error}")
            self._record_health(s, src, fetched, errors, now)
        if errors:
            message = "; ".join(errors)
            log.warning("source %s (%s): %s", src.id, src.name, message)
            return SourceResult(src.id, src.name, "error", new_total, message)
        outcome = next(
            (o for o in ("new", "unchanged", "not-modified") if o in outcomes), "unchanged"
        )
        return SourceResult(src.id, src.name, outcome, new_total)

    def _store_entries(
        self, s: Session, src: Source, entries: Iterable[FeedEntry], now: datetime
    ) -> int:
        """Insert the entries we have not seen; return how many were new."""
        entries = list(entries)
        keys = [e.key for e in entries]
        existing = set(
            s.scalars(
                select(EntryRow.key).where(EntryRow.source_id == src.id, EntryRow.key.in_(keys))
            )
        )
        new = 0
        for entry in entries:
            if entry.key in existing:
                continue
            existing.add(entry.key)
            s.add(
                EntryRow(
                    source_id=src.id,
                    key=entry.key,
                    link=entry.link,
                    title=entry.title,
                    author=entry.author,
                    published_at=entry.published or now,
                    updated_at=entry.updated,
                    fetched_at=now,
                    summary=entry.summary,
                    content=entry.content,
                    image=entry.image,
                )
            )
            new += 1
        return new

    def _record_health(
        self,
        s: Session,
        src: Source,
        fetched: list[tuple[str, datetime, FetchResult]],
        errors: list[str],
        now: datetime,
    ) -> None:
        row = s.get(SourceRow, src.id)
        if row is None:  # pragma: no cover - _sync_sources made it
            return
        row.last_poll_at = now
        row.last_http_status = fetched[-1][2].status if fetched else None
        interval = src.interval or self.settings.default_interval
        row.next_poll_at = now + timedelta(minutes=interval)
        if errors:
            row.last_error = "; ".join(errors)
            if row.status != "failing":
                row.status = "failing"
                row.failing_since = now
        else:
            row.status = "ok"
            row.failing_since = None
            row.last_error = None
            row.last_ok_at = now

    # --- extract -------------------------------------------------------------------------------

    def extract_pending(self) -> int:
        """Give every entry without text its article text (page, else the feed's own text)."""
        with self.session() as s:
            pending = list(
                s.execute(
                    select(EntryRow.id, EntryRow.source_id, EntryRow.link)
                    .where(EntryRow.text.is_(None))
                    .order_by(EntryRow.id)
                )
            )
        if not pending:
            return 0
        full_text = {src.id: src.full_text for src in self.config.sources}
        with self.fetcher() as fetcher:
            for done, (entry_id, source_id, link) in enumerate(pending, start=1):
                if self.stop.is_set():
                    break
                text, error = None, None
                if full_text.get(source_id, False) and link:
                    text, error = self._extract_page(fetcher, link)
                with self.session.begin() as s:
                    entry = s.get(EntryRow, entry_id)
                    if entry is None:
                        continue
                    if text is None:
                        text = strip_html(entry.content or entry.summary) or entry.title
                    entry.text = text
                    entry.extract_error = error
                if error:
                    log.info("entry %s (%s): extraction failed: %s", entry_id, link, error)
                self.progress("extract", done, len(pending), link or "")
        return len(pending)

    def _extract_page(self, fetcher: Fetcher, link: str) -> tuple[str | None, str | None]:
        res = fetcher.get(link, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        if res.error:
            return None, res.error
        try:
            return extract.extract_article(res.content, res.final_url).text, None
        except extract.ExtractionError as exc:
            return None, str(exc)

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
                    .order_by(EntryRow.published_at, EntryRow.fetched_at, EntryRow.id)
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
                .order_by(EntryRow.published_at, EntryRow.fetched_at, EntryRow.id)
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
                    select(EntryRow)
                    .where(EntryRow.story_id == story_id)
                    .order_by(EntryRow.published_at, EntryRow.id)
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
        related = [
            {"url": a.link, "outlet": a.source_name, "lean": a.lean} for a in articles if a.link
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
        available = not (entry.extract_error and len(text) < extract.MIN_TEXT_CHARS)
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

    # --- publish -------------------------------------------------------------------------------

    def published_stories(self, *, everything: bool = False) -> list[PublishedStory]:
        """The newest ``feed_size`` stories (or all, for the archive pages), newest first."""
        with self.session() as s:
            query = (
                select(StoryRow)
                .where(StoryRow.content_html.is_not(None), StoryRow.merged_into.is_(None))
                .order_by(StoryRow.last_published.desc(), StoryRow.id)
            )
            if not everything:
                query = query.limit(self.settings.feed_size)
            return [
                PublishedStory(
                    id=row.id,
                    headline=row.headline or "",
                    summary=row.summary or "",
                    content_html=row.content_html or "",
                    published=row.first_published,
                    updated=row.updated_at or row.first_published,
                    leans=tuple(json.loads(row.leans_json or "[]")),
                    related=tuple(RelatedLink(**r) for r in json.loads(row.related_json or "[]")),
                )
                for row in s.scalars(query)
            ]

    def failing_sources(self) -> list[SourceStatus]:
        enabled = {src.id for src in self.config.enabled_sources}
        with self.session() as s:
            rows = s.scalars(
                select(SourceRow).where(SourceRow.status == "failing").order_by(SourceRow.name)
            )
            return [
                SourceStatus(r.name, r.failing_since or utcnow(), r.last_error or "")
                for r in rows
                if r.id in enabled
            ]

    def publish(self) -> Path:
        """Write every output (feeds, archive pages, site, OPML) and ping the WebSub hub."""
        started = time.perf_counter()
        result = publish.publish_site(
            self.published_stories(everything=True),
            self.settings,
            self.failing_sources(),
            self.config.out_dir,
            self.config.sources,
            utcnow(),
        )
        if self.settings.hub:
            for error in websub.ping_hub(self.settings.hub, result.topics, self.settings.timeout):
                log.warning("%s", error)
        self.record_stage("publish", time.perf_counter() - started)
        self.progress("publish", 1, 1, str(result.feed_path))
        return result.feed_path

    # --- health and metrics --------------------------------------------------------------------

    def record_stage(self, stage: str, seconds: float) -> None:
        """Remember how long a stage took (for /metrics) and when it last ran (for /healthz)."""
        with self.session.begin() as s:
            row = s.get(StageRow, stage)
            if row is None:
                row = StageRow(stage=stage, total_seconds=0.0, runs=0)
                s.add(row)
            row.last_at = utcnow()
            row.last_seconds = seconds
            row.total_seconds += seconds
            row.runs += 1

    def health(self) -> Health:
        """Is the service doing its job: last publish recent enough, which sources fail."""
        with self.session() as s:
            row = s.get(StageRow, "publish")
            last = row.last_at if row else None
        failing = self.failing_sources()
        age = (utcnow() - last).total_seconds() if last else None
        problems = []
        if age is None:
            problems.append("nothing published yet")
        elif age > self.settings.stale_after * 60:
            problems.append(f"last publish {age / 60:.0f} minutes ago")
        enabled = self.config.enabled_sources
        if enabled and len(failing) == len(enabled):
            problems.append("every source is failing")
        return Health(last, age, failing, problems)

    def metrics(self) -> Metrics:
        """Counts and timings from the database, for the Prometheus endpoint."""
        with self.session() as s:
            polls = dict(
                s.execute(select(PollRow.outcome, func.count()).group_by(PollRow.outcome)).all()
            )
            entries = s.scalar(select(func.count()).select_from(EntryRow)) or 0
            stories = s.scalar(select(func.count()).select_from(StoryRow)) or 0
            stages = {
                r.stage: (r.last_seconds, r.total_seconds, r.runs, r.last_at)
                for r in s.scalars(select(StageRow))
            }
            failing = s.scalar(
                select(func.count()).select_from(SourceRow).where(SourceRow.status == "failing")
            )
        return Metrics(polls, entries, stories, stages, failing or 0, len(self.config.sources))

    # --- retention -----------------------------------------------------------------------------

    def prune(self) -> int:
        """Drop what was fetched more than ``retention_days`` ago (0 keeps everything).

        Age is counted from when we stored an entry, so an old article that turns up today is
        kept for the whole retention period rather than dropped on arrival.
        """
        days = self.settings.retention_days
        if not days:
            return 0
        cutoff = utcnow() - timedelta(days=days)
        with self.session.begin() as s:
            recent = select(EntryRow.story_id).where(
                EntryRow.fetched_at >= cutoff, EntryRow.story_id.is_not(None)
            )
            gone = s.execute(
                delete(EntryRow).where(
                    EntryRow.fetched_at < cutoff,
                    (EntryRow.story_id.is_(None)) | (EntryRow.story_id.not_in(recent)),
                )
            ).rowcount
            used = select(EntryRow.story_id).where(EntryRow.story_id.is_not(None))
            # Retired (merged) rows stay: they hold their ids so that none is ever reused.
            s.execute(
                delete(StoryRow).where(StoryRow.id.not_in(used), StoryRow.merged_into.is_(None))
            )
        return gone or 0

    # --- the whole cycle -----------------------------------------------------------------------

    def process(self, report: CycleReport) -> None:
        """Everything after fetching: extract, group, rewrite, publish (timed per stage)."""
        stages: list[tuple[str, Callable[[], object]]] = [
            ("extract", self.extract_pending),
        ]
        touched: set[str] = set()

        def do_group() -> None:
            touched.update(self.group())

        def do_rewrite() -> None:
            report.rewritten = self.rewrite(touched)

        stages += [("group", do_group), ("rewrite", do_rewrite)]
        for name, step in stages:
            if self.stop.is_set():
                return
            started = time.perf_counter()
            step()
            report.seconds[name] = time.perf_counter() - started
            self.record_stage(name, report.seconds[name])
        started = time.perf_counter()
        self.prune()
        report.feed_path = self.publish()
        report.seconds["publish"] = time.perf_counter() - started
        with self.session() as s:
            report.stories = s.scalar(select(func.count()).select_from(StoryRow)) or 0

    def run_cycle(self, sources: Sequence[Source] | None = None) -> CycleReport:
        """Poll, then extract, group, rewrite and publish: one full cycle."""
        report = CycleReport()
        started = time.perf_counter()
        report.sources = self.poll(sources)
        report.seconds["fetch"] = time.perf_counter() - started
        self.record_stage("fetch", report.seconds["fetch"])
        report.new_entries = sum(r.new_entries for r in report.sources)
        self.process(report)
        return report


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


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
