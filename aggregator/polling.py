"""When to poll a source next, and what its health is: pure decisions, no I/O.

Kept apart from fetching and storage so every rule (adaptive interval, server hints, jitter,
error backoff, Retry-After, parking) is a plain function of plain values that a unit test can
pin down without a clock or a server.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

PARK_AT_ONCE = frozenset({410})  # Gone: the publisher says the feed will not come back
RETRY_AFTER_STATUSES = frozenset({429, 503})
_MAX_AGE_RE = re.compile(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """The knobs of scheduling, from ``[settings]`` (defaults suit news outlets)."""

    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=24)
    default_interval: timedelta = timedelta(minutes=30)
    park_after: timedelta = timedelta(days=3)
    jitter: float = 0.1  # polls land up to 10% later than the interval, so they spread out


@dataclass(frozen=True)
class Health:
    """What we know about a source before this poll."""

    status: str = "new"  # new, ok, failing, parked
    failing_since: datetime | None = None
    consecutive_errors: int = 0
    mean_gap: timedelta | None = None  # observed time between new entries
    last_new_entry_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """How this poll went (all feeds of the source folded together)."""

    ok: bool
    http_status: int | None = None
    headers: Mapping[str, str] | None = None
    ttl_minutes: int | None = None  # RSS <ttl>
    new_entries: int = 0
    published: tuple[datetime, ...] = ()  # publication times seen in the feed, for the rate


@dataclass(frozen=True)
class Decision:
    """The new health of a source and when to poll it next."""

    status: str
    failing_since: datetime | None
    consecutive_errors: int
    next_poll_at: datetime
    retry_until: datetime | None  # the server asked us to wait (429/503 Retry-After)
    mean_gap: timedelta | None
    last_new_entry_at: datetime | None


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a delay: seconds, or an HTTP date; None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = _http_date(value)
    return max(when - now, timedelta(0)) if when else None


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def server_hint(
    headers: Mapping[str, str] | None, now: datetime, ttl_minutes: int | None = None
) -> timedelta | None:
    """The longest wait the server asked for: Cache-Control max-age, Expires, ``<ttl>``,
    Retry-After. We never poll sooner than this (capped later at the maximum interval)."""
    hints: list[timedelta] = []
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    control = headers.get("cache-control", "")
    ages = [int(m) for m in _MAX_AGE_RE.findall(control)]
    if ages:
        hints.append(timedelta(seconds=max(ages)))
    elif "expires" in headers and "no-cache" not in control.lower():
        expires = _http_date(headers["expires"])
        served = _http_date(headers.get("date", "")) or now
        if expires is not None:
            hints.append(max(expires - served, timedelta(0)))
    if ttl_minutes and ttl_minutes > 0:
        hints.append(timedelta(minutes=ttl_minutes))
    retry = parse_retry_after(headers.get("retry-after"), now)
    if retry is not None:
        hints.append(retry)
    return max(hints) if hints else None


def observed_gap(published: Iterable[datetime], newest: int = 20) -> timedelta | None:
    """Mean time between the newest entries' publication times; None with fewer than two."""
    times = sorted(set(published), reverse=True)[:newest]
    if len(times) < 2:
        return None
    return (times[0] - times[-1]) / (len(times) - 1)


def adaptive_interval(
    mean_gap: timedelta | None,
    last_new_entry_at: datetime | None,
    now: datetime,
    policy: Policy,
    pinned: timedelta | None = None,
) -> timedelta:
    """Poll about as often as the source publishes, clamped; a configured interval pins it.

    A source that has gone quiet for longer than its usual gap is polled less and less often
    (half the silence), so dormant feeds drift towards the maximum interval.
    """
    if pinned is not None:
        return pinned
    if mean_gap is None:
        return _clamp(policy.default_interval, policy)
    gap = mean_gap
    if last_new_entry_at is not None:
        gap = max(gap, (now - last_new_entry_at) / 2)
    return _clamp(gap, policy)


def _clamp(value: timedelta, policy: Policy) -> timedelta:
    return max(policy.min_interval, min(value, policy.max_interval))


def backoff(consecutive_errors: int, policy: Policy) -> timedelta:
    """Exponential: the minimum interval doubled per consecutive error, capped at the maximum."""
    if consecutive_errors < 1:
        return timedelta(0)
    steps = min(consecutive_errors - 1, 30)  # 2**30 minimum intervals is past any cap
    return min(policy.min_interval * (2**steps), policy.max_interval)


def with_jitter(interval: timedelta, policy: Policy, rng: random.Random) -> timedelta:
    """Up to ``policy.jitter`` later, never earlier: jitter must not undercut a server hint."""
    return interval * (1 + rng.uniform(0, policy.jitter))


def decide(
    health: Health,
    outcome: Outcome,
    now: datetime,
    policy: Policy,
    *,
    pinned: timedelta | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The source's next health and poll time after ``outcome``."""
    rng = rng or random.Random()
    hint = server_hint(outcome.headers, now, outcome.ttl_minutes)
    retry_until = None
    if outcome.http_status in RETRY_AFTER_STATUSES and outcome.headers:
        retry = parse_retry_after(
            {k.lower(): v for k, v in outcome.headers.items()}.get("retry-after"), now
        )
        if retry is not None:
            retry_until = now + min(retry, policy.max_interval)

    if outcome.ok:
        gap = observed_gap(outcome.published)
        mean_gap = gap if gap is not None else health.mean_gap
        last_new = now if outcome.new_entries else health.last_new_entry_at
        interval = adaptive_interval(mean_gap, last_new, now, policy, pinned)
        if hint is not None:
            interval = max(interval, min(hint, policy.max_interval))
        return Decision(
            status="ok",
            failing_since=None,
            consecutive_errors=0,
            next_poll_at=now + with_jitter(interval, policy, rng),
            retry_until=None,
            mean_gap=mean_gap,
            last_new_entry_at=last_new,
        )

    errors = health.consecutive_errors + 1
    since = health.failing_since if health.status in ("failing", "parked") else None
    since = since or now
    parked = outcome.http_status in PARK_AT_ONCE or now - since >= policy.park_after
    if parked:
        wait = policy.max_interval  # still tried once a day, so a recovery is noticed
    else:
        wait = backoff(errors, policy)
        if hint is not None:
            wait = max(wait, min(hint, policy.max_interval))
    return Decision(
        status="parked" if parked else "failing",
        failing_since=since,
        consecutive_errors=errors,
        next_poll_at=now + with_jitter(wait, policy, rng),
        retry_until=retry_until,
        mean_gap=health.mean_gap,
        last_new_entry_at=health.last_new_entry_at,
    )


def waiting(
    status: str,
    consecutive_errors: int,
    next_poll_at: datetime | None,
    retry_until: datetime | None,
    now: datetime,
) -> str | None:
    """Why ``run --once``/``poll`` must leave a source alone now, or None when it may be polled.

    Only a server's Retry-After and an error backoff are honoured by a manual poll; a healthy
    source is polled whenever the operator asks.
    """
    if retry_until is not None and retry_until > now:
        return f"server asked us to wait until {retry_until:%Y-%m-%d %H:%M} UTC"
    if consecutive_errors and next_poll_at is not None and next_poll_at > now:
        kind = "parked" if status == "parked" else "backing off after errors"
        return f"{kind}; next try {next_poll_at:%Y-%m-%d %H:%M} UTC"
    return None


def backlog(next_polls: Iterable[datetime | None], now: datetime, grace: timedelta) -> int:
    """How many sources are overdue by more than ``grace``: a backlog means we cannot keep up."""
    return sum(1 for when in next_polls if when is not None and now - when > grace)
