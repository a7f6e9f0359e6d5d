"""Scheduling decisions: adaptive interval, server hints, jitter, backoff, Retry-After, parking."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from aggregator.polling import (
    Health,
    Outcome,
    Policy,
    adaptive_interval,
    backlog,
    backoff,
    decide,
    observed_gap,
    parse_retry_after,
    server_hint,
    waiting,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
POLICY = Policy()
NO_JITTER = Policy(jitter=0.0)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_interval_follows_the_publishing_rate_within_bounds() -> None:
    hourly = [NOW - timedelta(hours=h) for h in range(10)]
    assert observed_gap(hourly) == timedelta(hours=1)
    assert observed_gap([NOW]) is None
    assert adaptive_interval(timedelta(hours=1), NOW, NOW, POLICY) == timedelta(hours=1)
    assert adaptive_interval(timedelta(seconds=30), NOW, NOW, POLICY) == minutes(5)
    assert adaptive_interval(timedelta(days=9), NOW, NOW, POLICY) == timedelta(hours=24)
    assert adaptive_interval(None, None, NOW, POLICY) == minutes(30)
    # A configured interval pins it, even below the floor.
    assert adaptive_interval(timedelta(hours=1), NOW, NOW, POLICY, pinned=minutes(2)) == minutes(2)
    # A source silent for ten hours with an hourly habit is polled every five hours.
    quiet = adaptive_interval(timedelta(hours=1), NOW - timedelta(hours=10), NOW, POLICY)
    assert quiet == timedelta(hours=5)


def test_server_hints_are_the_longest_of_cache_control_expires_ttl_retry_after() -> None:
    assert server_hint({"Cache-Control": "public, max-age=3600"}, NOW) == timedelta(hours=1)
    expires = {"Expires": format_datetime(NOW + minutes(90), usegmt=True)}
    assert server_hint(expires, NOW) == minutes(90)
    assert server_hint({}, NOW, ttl_minutes=120) == minutes(120)
    assert server_hint({"Retry-After": "600"}, NOW) == minutes(10)
    both = {"Cache-Control": "max-age=60", "Retry-After": "7200"}
    assert server_hint(both, NOW, ttl_minutes=30) == timedelta(hours=2)
    assert server_hint({"Expires": "0"}, NOW) is None  # garbled: ignored, not a crash
    assert server_hint({}, NOW) is None


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("120", NOW) == minutes(2)
    assert parse_retry_after(format_datetime(NOW + minutes(7), usegmt=True), NOW) == minutes(7)
    assert parse_retry_after("soon", NOW) is None


def test_next_poll_never_undercuts_a_hint_and_jitter_spreads_polls() -> None:
    ok = Outcome(ok=True, headers={"cache-control": "max-age=7200"}, http_status=200)
    d = decide(Health(), ok, NOW, NO_JITTER, pinned=minutes(10))
    assert d.next_poll_at == NOW + timedelta(hours=2)
    rng = random.Random(1)
    times = {
        decide(Health(), Outcome(ok=True), NOW, POLICY, rng=rng).next_poll_at for _ in range(20)
    }
    assert len(times) > 10, "jitter spreads the polls"
    assert all(NOW + minutes(30) <= t <= NOW + minutes(33) for t in times)


def test_errors_back_off_exponentially_up_to_a_day() -> None:
    assert [backoff(n, POLICY) for n in (1, 2, 3, 4)] == [
        minutes(5),
        minutes(10),
        minutes(20),
        minutes(40),
    ]
    assert backoff(50, POLICY) == timedelta(hours=24)
    health = Health()
    for n in range(1, 5):
        d = decide(health, Outcome(ok=False, http_status=500), NOW, NO_JITTER)
        assert d.status == "failing" and d.consecutive_errors == n
        assert d.next_poll_at == NOW + backoff(n, POLICY)
        health = Health(d.status, d.failing_since, d.consecutive_errors)
    assert health.failing_since == NOW, "failing since the first error, not the latest"
    recovered = decide(health, Outcome(ok=True, http_status=200), NOW, NO_JITTER)
    assert (recovered.status, recovered.failing_since, recovered.consecutive_errors) == (
        "ok",
        None,
        0,
    )


def test_429_and_503_honour_retry_after() -> None:
    for status in (429, 503):
        d = decide(
            Health(),
            Outcome(ok=False, http_status=status, headers={"Retry-After": "3600"}),
            NOW,
            NO_JITTER,
        )
        assert d.retry_until == NOW + timedelta(hours=1)
        assert d.next_poll_at == NOW + timedelta(hours=1)
    # A 500 with Retry-After is still only backed off, not a server request to wait.
    d = decide(Health(), Outcome(ok=False, http_status=500), NOW, NO_JITTER)
    assert d.retry_until is None


def test_parked_after_three_days_or_at_once_on_410() -> None:
    two_days = Health("failing", NOW - timedelta(days=2), 40)
    assert decide(two_days, Outcome(ok=False, http_status=500), NOW, NO_JITTER).status == "failing"
    three = Health("failing", NOW - timedelta(days=3), 60)
    parked = decide(three, Outcome(ok=False, http_status=500), NOW, NO_JITTER)
    assert parked.status == "parked" and parked.next_poll_at == NOW + timedelta(hours=24)
    gone = decide(Health("ok"), Outcome(ok=False, http_status=410), NOW, NO_JITTER)
    assert gone.status == "parked" and gone.failing_since == NOW
    back = decide(Health("parked", NOW - timedelta(days=5), 9), Outcome(ok=True), NOW, NO_JITTER)
    assert back.status == "ok"


def test_manual_polls_wait_only_for_retry_after_and_backoff() -> None:
    later = NOW + minutes(10)
    assert waiting("ok", 0, later, None, NOW) is None  # healthy: poll when asked
    assert "server asked us to wait" in (waiting("failing", 1, later, later, NOW) or "")
    assert "backing off" in (waiting("failing", 2, later, None, NOW) or "")
    assert "parked" in (waiting("parked", 9, later, None, NOW) or "")
    assert waiting("failing", 2, NOW - minutes(1), None, NOW) is None  # backoff over


def test_backlog_counts_sources_overdue_beyond_grace() -> None:
    times = [NOW - minutes(1), NOW - minutes(10), NOW - minutes(30), NOW + minutes(5), None]
    assert backlog(times, NOW, minutes(2)) == 2
