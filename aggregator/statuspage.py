"""The status page as HTML (``aggregator/templates/status.html``): one self-contained page.

Its stylesheet is inline, allowed by its hash in the page's own Content-Security-Policy: the
page needs no second request (which a token in the URL would not reach) and runs no script.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from importlib import resources

from aggregator.models import LastPoll
from aggregator.pipeline.reports import STAGES
from aggregator.publish.html import jinja_env
from aggregator.status import Cycle, Status

CSS = resources.files("aggregator").joinpath("templates/status.css").read_text(encoding="utf-8")
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def at(moment: datetime) -> str:
    """A moment, short, in UTC (the page says so once): "Dec 7, 03:33"."""
    moment = moment.astimezone(UTC)
    return f"{moment:%b} {moment.day}, {moment:%H:%M}"


def span(seconds: float) -> str:
    """A duration as people say it: 40 s, 12 min, 3 h, 2 days."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def poll_result(poll: LastPoll) -> str:
    """A poll's outcome in a few words: "new: 3 entries", "not-modified", "error (HTTP 503)"."""
    if poll.outcome == "new":
        return f"new: {poll.new_entries} entries" if poll.new_entries != 1 else "new: 1 entry"
    if poll.outcome == "error":
        return f"error (HTTP {poll.http_status})" if poll.http_status else "error"
    return poll.outcome


def stage_seconds(cycle: Cycle, stage: str) -> str:
    if stage not in cycle.stages:
        return "-"
    total, runs = cycle.stages[stage]
    return seconds(total) + (f" ×{runs}" if runs > 1 else "")


def render(status: Status, query: str = "") -> str:
    """The page; ``query`` (``?token=...``, or empty) is carried to its JSON link."""
    now = status.generated

    def ago(moment: datetime | None) -> str:
        """How long ago (or how soon) ``moment`` is: "4 min ago", "in 2 h"."""
        if moment is None:
            return "never"
        delta = (now - moment).total_seconds()
        return f"{span(delta)} ago" if delta >= 0 else f"in {span(delta)}"

    page = jinja_env("aggregator").get_template("status.html")
    return page.render(
        s=status,
        css=CSS,
        query=query,
        stages=STAGES,
        when=when,
        at=at,
        ago=ago,
        seconds=seconds,
        poll_result=poll_result,
        stage_seconds=stage_seconds,
    )
