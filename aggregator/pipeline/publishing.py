"""The publish stage, and the health and metrics read from the store."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from aggregator import publish
from aggregator.config import ORIGIN_FILE, Config, PublishSettings, Source
from aggregator.models import Health, Metrics, PublishedStory, RetiredStory, SourceStatus
from aggregator.pipeline.reports import Progress, _no_progress, log
from aggregator.publish import websub, write_atomic
from aggregator.publish.files import publish_lock
from aggregator.store import StoreType, lasting_url, utcnow

RETIRED_DAYS = 7  # how long a merged story's tombstone and forwarding page stay published


class Publishing:
    """The publish stage, and the health and metrics read from the store.

    It is given its own settings (``[settings]``' publish part), the sources, the folder it
    publishes into and the origin record it leaves there (the database and sources file,
    which ``serve`` reads back): :func:`publishing_of` finds them in a configuration."""

    def __init__(
        self,
        store: StoreType,
        sources: Sequence[Source],
        settings: PublishSettings,
        *,
        out_dir: Path,
        origin: Mapping[str, str],
        progress: Progress = _no_progress,
    ) -> None:
        self.store = store
        self.sources = tuple(sources)
        self.enabled_sources = tuple(src for src in self.sources if src.enabled)
        self.settings = settings
        self.out_dir = out_dir
        self.origin = dict(origin)
        self.progress = progress

    # --- publish -------------------------------------------------------------------------------

    def published_stories(self, *, everything: bool = False) -> list[PublishedStory]:
        """The newest ``feed_size`` stories (or all, for the archive pages), newest first,
        rendered from their stored rewrites."""
        stored = self.store.published_stories(None if everything else self.settings.feed_size)
        return [publish.rendered(s) for s in stored]

    def shown(self, stories: Sequence[PublishedStory]) -> list[PublishedStory]:
        """The stories with their ``updated`` time moved to now where what readers see changed
        since they were last published (recorded first, so the feed never shows a time the
        database does not have)."""
        now = utcnow()
        changed = {s.id: h for s in stories if (h := publish.shown_hash(s)) != s.content_hash}
        if changed:
            self.store.record_shown(changed, now)
        return [
            dataclasses.replace(s, updated=now, content_hash=changed[s.id])
            if s.id in changed
            else s
            for s in stories
        ]

    def retired_stories(self, days: int = RETIRED_DAYS) -> list[RetiredStory]:
        """Stories merged into another in the last ``days`` days, newest first: long enough
        for every reader polling the feed to see the tombstone."""
        return self.store.retired_stories(utcnow() - timedelta(days=days))

    def failing_sources(self) -> list[SourceStatus]:
        """The enabled sources that are failing or parked (a disabled one is nobody's worry)."""
        return self.store.failing_sources({src.id for src in self.enabled_sources})

    def publish(self) -> Path:
        """Write every output (feeds, archive pages, site, OPML) and ping the WebSub hub."""
        started = time.perf_counter()
        out = self.out_dir
        # One publisher at a time, reading the stories under the lock, so the last to write
        # wrote the newest; the files a killed publisher left are removed first.
        with publish_lock(out) as strays:
            if strays:
                log.warning("publish: removed %d temporary files a killed publish left", strays)
            result = publish.publish_site(
                self.shown(self.published_stories(everything=True)),
                self.settings,
                self.failing_sources(),
                out,
                self.sources,
                utcnow(),
                self.retired_stories(),
            )
            write_atomic(out / ORIGIN_FILE, (json.dumps(self.origin, indent=2) + "\n").encode())
        if self.settings.hub:
            for error in websub.ping_hub(self.settings.hub, result.topics, self.settings.timeout):
                log.warning("%s", error)
        self.record_stage("publish", time.perf_counter() - started)
        self.progress("publish", 1, 1, str(result.feed_path))
        return result.feed_path

    # --- health and metrics --------------------------------------------------------------------

    def record_stage(self, stage: str, seconds: float) -> None:
        """Remember how long a stage took (for /metrics) and when it last ran (for /healthz)."""
        self.store.record_stage(stage, seconds, utcnow())

    def health(self) -> Health:
        """Is the service doing its job: last publish recent enough, which sources fail."""
        run = self.store.stage_runs().get("publish")
        last = run.last_at if run else None
        failing = self.failing_sources()
        age = (utcnow() - last).total_seconds() if last else None
        problems = []
        if age is None:
            problems.append("nothing published yet")
        elif age > self.settings.stale_after * 60:
            problems.append(f"last publish {age / 60:.0f} minutes ago")
        enabled = self.enabled_sources
        if enabled and len(failing) == len(enabled):
            problems.append("every source is failing")
        return Health(last, age, failing, problems)

    def metrics(self) -> Metrics:
        """Counts and timings from the database, for the Prometheus endpoint."""
        stages = {
            name: (r.last_seconds, r.total_seconds, r.runs, r.last_at)
            for name, r in self.store.stage_runs().items()
        }
        return Metrics(
            self.store.poll_outcomes(),
            self.store.count_entries(),
            self.store.count_stories(),
            stages,
            self.store.count_failing(),
            len(self.sources),
        )


def publishing_of(
    store: StoreType, config: Config, *, progress: Progress = _no_progress
) -> Publishing:
    """The publish stage of ``config``: the publish part of its settings, its sources, its
    output folder, and the origin record naming its database (with no password) and sources
    file."""
    origin = {"db": lasting_url(config.db_url), "sources": str(config.sources_path.resolve())}
    return Publishing(
        store,
        config.sources,
        config.settings.publish,
        out_dir=config.out_dir,
        origin=origin,
        progress=progress,
    )
