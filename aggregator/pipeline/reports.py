"""Constants shared by the stages, and the plain reports a cycle returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    outcome: str  # new, unchanged, not-modified, error, waiting
    new_entries: int = 0
    error: str | None = None
    note: str | None = None  # why a waiting source was left alone
    status: str | None = None  # the source's health after the poll: ok, failing, parked

    @property
    def failing(self) -> bool:
        """It failed now, or it is waiting out a backoff after failing (it is still down)."""
        return self.outcome == "error" or (
            self.outcome == "waiting" and self.status in ("failing", "parked")
        )

    @property
    def detail(self) -> str:
        detail = f"{self.source_id}: {self.outcome}"
        if self.error or self.note:
            detail += f" ({self.error or self.note})"
        elif self.new_entries:
            detail += f" (+{self.new_entries})"
        return detail


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
        """Down: failed in this cycle, or still waiting out the backoff of a failure."""
        return [r for r in self.sources if r.failing]

    @property
    def waiting(self) -> list[SourceResult]:
        """Left alone for another reason (a healthy source's Retry-After)."""
        return [r for r in self.sources if r.outcome == "waiting" and not r.failing]

    def summary(self) -> list[str]:
        """The end-of-cycle summary: where the feed is, what changed, what failed, how long."""
        lines = [f"Feed written: {self.feed_path}"] if self.feed_path else []
        front = self.feed_path.parent / "index.html" if self.feed_path else None
        if front is not None and front.exists():
            lines.append(f"Front page: {front}")
        ok = len(self.sources) - len(self.failed) - len(self.waiting)
        waiting = f", {len(self.waiting)} waiting" if self.waiting else ""
        lines.append(
            f"Sources: {ok} ok, {len(self.failed)} failing{waiting}; "
            f"new entries: {self.new_entries}; "
            f"stories: {self.stories} ({self.rewritten} rewritten)"
        )
        if self.sources and len(self.failed) == len(self.sources):
            lines.append(
                f"Every source is down (all {len(self.sources)}): nothing new can arrive; "
                "check this machine's network and the errors below"
            )
        lines += [f"  failing: {r.source_id} ({r.name}): {r.error or r.note}" for r in self.failed]
        lines += [f"  waiting: {r.source_id} ({r.name}): {r.note}" for r in self.waiting]
        if self.seconds:
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
            lines.append(f"Seconds per stage: {stages}")
        return lines
