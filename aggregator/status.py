"""The operator's status page (``serve``'s ``/status``, and ``/status.json``): who may see it,
and what it shows.

The page tells an operator what the CLI's ``sources`` table, ``/healthz`` and ``/metrics`` tell
in pieces: every source with its last poll, its next, and why it is held back; the recent
cycles, stage by stage; on PostgreSQL the workers and their queue. Everything here is a pure
function of plain data the store hands back (:func:`gather` is the one place that asks it).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator import polling
from aggregator.config import Config
from aggregator.models import (
    ExtractFailures,
    Health,
    LastPoll,
    QueueState,
    SourceState,
    StageEvent,
)
from aggregator.store import StoreType

# Headers a reverse proxy adds: a request carrying one was relayed, whatever its socket says
# (a proxy on this host connects from loopback), so it is never taken for a local one.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host", "via")
STAGE_EVENTS = 200  # stage runs read for the recent cycles: some 40 cycles


# --- who may see it ---------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """Whether a client address is this machine's loopback (127.0.0.0/8, ::1, or IPv4's
    loopback mapped into IPv6); a name or nothing (a Unix socket) is not."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def sent_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token a request sends: ``Authorization: Bearer TOKEN``, else ``?token=TOKEN``."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or None


def access(
    client: str | None, headers: Mapping[str, str], sent: str | None, token: str | None
) -> str:
    """Whether a request may see the status page: ``ok``; ``token`` (no: it must send the
    configured token, 401); ``local`` (no: only loopback clients may, 403).

    The right token opens it from anywhere. Without it, only a loopback client whose request
    no proxy relayed (see :data:`FORWARDING_HEADERS`) may see it: off the public path by
    default, even behind a reverse proxy on this host.
    """
    right = token is not None and sent is not None
    if right and hmac.compare_digest(str(sent).encode(), str(token).encode()):
        return "ok"
    relayed = any(name in headers for name in FORWARDING_HEADERS)
    if is_loopback(client) and not relayed:
        return "ok"
    return "token" if token is not None else "local"


# --- what it shows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLine:
    """One source as the status page shows it."""

    id: str
    name: str
    lean: str
    kind: str
    status: str  # new, ok, failing, parked, disabled
    last_poll: LastPoll | None
    next_poll_at: datetime | None
    hold: str | None  # why it waits (a backoff, parking, a server's Retry-After)
    error: str | None
    failing_since: datetime | None
    entries: int
    last_new_entry_at: datetime | None
    extract_failures: int
    extract_error: str | None


@dataclass(frozen=True)
class Cycle:
    """The stage runs up to and including one publish (``published``: False for the runs
    since the last publish, a cycle under way or one that found nothing to publish)."""

    started: datetime
    ended: datetime
    stages: dict[str, tuple[float, int]]  # stage: (seconds, runs)
    published: bool

    @property
    def seconds(self) -> float:
        return sum(s for s, _ in self.stages.values())


@dataclass(frozen=True)
class Status:
    """Everything the status page shows, as of ``generated``."""

    generated: datetime
    title: str
    health: Health
    sources: list[SourceLine]
    cycles: list[Cycle]
    queue: QueueState | None  # None: SQLite, no workers
    stalled_seconds: int  # a worker silent this long is taken for dead

    def count(self, status: str) -> int:
        return sum(1 for line in self.sources if line.status == status)


def hold_reason(state: SourceState, park_after_days: int, now: datetime) -> str | None:
    """Why a source is not polled when its interval says (None: it is not held back)."""
    base = polling.waiting(
        state.status, state.consecutive_errors, state.next_poll_at, state.retry_until, now
    )
    if base is None:
        return None
    if state.status == "parked":
        why = (
            "the feed answered 410 Gone"
            if state.last_http_status == 410
            else f"failing for more than {park_after_days} days"
        )
        return f"{base} ({why}; tried once a day)"
    if state.consecutive_errors:
        return f"{base} ({state.consecutive_errors} in a row)"
    return base


def source_lines(
    config: Config,
    states: Mapping[str, SourceState],
    polls: Mapping[str, LastPoll],
    failures: Mapping[str, ExtractFailures],
    now: datetime,
) -> list[SourceLine]:
    """Every configured source, in the order of the sources file, with what the store knows."""
    lines = []
    for src in config.sources:
        state = states.get(src.id, SourceState(src.id, "new"))
        failed = failures.get(src.id)
        enabled = src.enabled
        lines.append(
            SourceLine(
                id=src.id,
                name=src.name,
                lean=src.lean,
                kind=src.kind,
                status=state.status if enabled else "disabled",
                last_poll=polls.get(src.id),
                next_poll_at=state.next_poll_at if enabled else None,
                hold=hold_reason(state, config.settings.park_after_days, now)
                if enabled
                else "disabled in the sources file",
                error=state.last_error,
                failing_since=state.failing_since,
                entries=state.entries,
                last_new_entry_at=state.last_new_entry_at,
                extract_failures=failed.count if failed else 0,
                extract_error=failed.last_error if failed else None,
            )
        )
    return lines


def recent_cycles(events: Sequence[StageEvent], limit: int, *, cut: bool = False) -> list[Cycle]:
    """Stage runs (oldest first) grouped into cycles, newest first: each publish closes one.

    The scheduler's cycle is fetch, extract, group, rewrite, publish; polls that found nothing
    to publish join the next cycle (their runs are counted). On workers a cycle is extract,
    group, rewrite and publish (polls run as many small tasks and are shown per source).
    ``cut``: the history's oldest runs are gone, so its first cycle is dropped as partial.
    """
    cycles: list[Cycle] = []
    current: list[StageEvent] = []
    for event in events:
        current.append(event)
        if event.stage == "publish":
            cycles.append(_cycle(current, published=True))
            current = []
    if current:
        cycles.append(_cycle(current, published=False))
    if cut and cycles:
        cycles = cycles[1:]
    return cycles[::-1][:limit]


def _cycle(events: Sequence[StageEvent], *, published: bool) -> Cycle:
    stages: dict[str, tuple[float, int]] = {}
    for e in events:
        seconds, runs = stages.get(e.stage, (0.0, 0))
        stages[e.stage] = (seconds + e.seconds, runs + 1)
    started = min(e.at.timestamp() - e.seconds for e in events)
    return Cycle(
        started=datetime.fromtimestamp(started, events[0].at.tzinfo),
        ended=events[-1].at,
        stages=stages,
        published=published,
    )


def gather(store: StoreType, config: Config, health: Health, now: datetime) -> Status:
    """The status page's data, read from the store."""
    events = store.stage_history(STAGE_EVENTS)
    return Status(
        generated=now,
        title=config.settings.title,
        health=health,
        sources=source_lines(
            config, store.source_states(), store.last_polls(), store.extract_failures(), now
        ),
        cycles=recent_cycles(events, 20, cut=len(events) >= STAGE_EVENTS),
        queue=store.queue_state(),
        stalled_seconds=config.workers.stalled_seconds,
    )


# --- as JSON ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def as_json(status: Status) -> dict[str, Any]:
    """``/status.json``: the same data as the page, times in ISO 8601 (UTC)."""
    now = status.generated
    return {
        "generated": _iso(now),
        "last_publish": _iso(status.health.last_publish),
        "problems": status.health.problems,
        "sources": [
            {
                "id": s.id,
                "name": s.name,
                "lean": s.lean,
                "kind": s.kind,
                "status": s.status,
                "last_poll": None
                if s.last_poll is None
                else {
                    "at": _iso(s.last_poll.started),
                    "outcome": s.last_poll.outcome,
                    "http_status": s.last_poll.http_status,
                    "error": s.last_poll.error,
                    "new_entries": s.last_poll.new_entries,
                    "seconds": round(s.last_poll.seconds, 3),
                },
                "next_poll": _iso(s.next_poll_at),
                "hold": s.hold,
                "error": s.error,
                "failing_since": _iso(s.failing_since),
                "entries": s.entries,
                "last_new_entry": _iso(s.last_new_entry_at),
                "extract_failures": s.extract_failures,
                "last_extract_error": s.extract_error,
            }
            for s in status.sources
        ],
        "cycles": [
            {
                "started": _iso(c.started),
                "ended": _iso(c.ended),
                "published": c.published,
                "seconds": round(c.seconds, 3),
                "stages": {
                    name: {"seconds": round(seconds, 3), "runs": runs}
                    for name, (seconds, runs) in c.stages.items()
                },
            }
            for c in status.cycles
        ],
        "workers": None
        if status.queue is None
        else {
            "workers": [
                {
                    "id": w.id,
                    "last_heartbeat": _iso(w.last_heartbeat),
                    "heartbeat_age_seconds": round((now - w.last_heartbeat).total_seconds(), 1),
                    "stalled": (now - w.last_heartbeat).total_seconds() > status.stalled_seconds,
                    "running": list(w.running),
                }
                for w in status.queue.workers
            ],
            "queue": [
                {
                    "task": d.task,
                    "waiting": d.waiting,
                    "running": d.running,
                    "oldest_wait_seconds": None
                    if d.oldest_wait_seconds is None
                    else round(d.oldest_wait_seconds, 1),
                }
                for d in status.queue.depth
            ],
        },
    }
