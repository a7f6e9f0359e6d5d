"""The publish stage, and the health and metrics read from the store."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from aggregator import publish
from aggregator.config import ORIGIN_FILE, Config
from aggregator.models import Health, Metrics, PublishedStory, RetiredStory, SourceStatus
from aggregator.pipeline.reports import Progress, _no_progress, log
from aggregator.publish import websub, write_atomic
from aggregator.publish.files import publish_lock
from aggregator.store import StoreType, lasting_url, utcnow

RETIRED_DAYS = 7  # how long a merged story's tombstone and forwarding page stay published


class Publishing:
    """The publish stage, and the health and metrics read from the store."""

    def __init__(
        self, store: StoreType, config: Config, *, progress: Progress = _no_progress
    ) -> None:
        self.store = store
        self.config = config
        self.settings = config.settings
        self.progress = progress

    # --- publish -------------------------------------------------------------------------------

    def published_stories(self, *, everything: bool = False) -> list[PublishedStory]:
        """The newest ``feed_size`` stories (or all, for the archive pages), newest first."""
        return self.store.published_stories(None if everything else self.settings.feed_size)

    def retired_stories(self, days: int = RETIRED_DAYS) -> list[RetiredStory]:
        """Stories merged into another in the last ``days`` days, newest first: long enough
        for every reader polling the feed to see the tombstone."""
        return self.store.retired_stories(utcnow() - timedelta(days=days))

    def failing_sources(self) -> list[SourceStatus]:
        """The enabled sources that are failing or parked (a disabled one is nobody's worry)."""
        return self.store.failing_sources({src.id for src in self.config.enabled_sources})

    def publish(self) -> Path:
        """Write every output (feeds, archive pages, site, OPML) and ping the WebSub hub."""
        started = time.perf_counter()
        origin = {
            "db": lasting_url(self.config.db_url),
            "sources": str(self.config.sources_path.resolve()),
        }
        out = self.config.out_dir
        # One publisher at a time, reading the stories under the lock, so the last to write
        # wrote the newest; the files a killed publisher left are removed first.
        with publish_lock(out) as strays:
            if strays:
                log.warning("publish: removed %d temporary files a killed publish left", strays)
            result = publish.publish_site(
                self.published_stories(everything=True),
                self.settings,
                self.failing_sources(),
                out,
                self.config.sources,
                utcnow(),
                self.retired_stories(),
            )
            write_atomic(out / ORIGIN_FILE, (json.dumps(origin, indent=2) + "\n").encode())
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
        enabled = self.config.enabled_sources
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
            len(self.config.sources),
        )
