"""Leases on sources, for workers sharing one PostgreSQL (``balanced-news worker``).

A dispatcher claims the due sources with ``FOR UPDATE SKIP LOCKED`` (two dispatchers never
claim the same source) and pushes their ``next_poll_at`` forward by the lease: the poll that
follows sets the real next poll time, and a source whose worker died mid-poll falls due again
once the lease ends. The claim hands back the source's ``last_poll_at`` as a token: a poll task
whose source was polled since it was queued (a slow poll that outlived its lease) is skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from aggregator.store._base import StoreBase
from aggregator.store.schema import SourceRow


def token_of(last_poll_at: datetime | None) -> str:
    """A source's poll token: its last poll time as text ('' before its first poll)."""
    return last_poll_at.isoformat() if last_poll_at is not None else ""


class LeasesMixin(StoreBase):
    def claim_due_sources(
        self, among: Collection[str], now: datetime, lease: timedelta, limit: int = 10_000
    ) -> list[tuple[str, str]]:
        if not among:
            return []
        with self.session.begin() as s:
            due = s.execute(
                select(SourceRow.id, SourceRow.last_poll_at)
                .where(
                    SourceRow.id.in_(list(among)),
                    or_(SourceRow.next_poll_at.is_(None), SourceRow.next_poll_at <= now),
                )
                .order_by(SourceRow.next_poll_at.nulls_first(), SourceRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if due:
                s.execute(
                    update(SourceRow)
                    .where(SourceRow.id.in_([row.id for row in due]))
                    .values(next_poll_at=now + lease)
                )
        return [(row.id, token_of(row.last_poll_at)) for row in due]

    def poll_token(self, source_id: str) -> str | None:
        with self.session() as s:
            row = s.execute(
                select(SourceRow.last_poll_at).where(SourceRow.id == source_id)
            ).one_or_none()
        return None if row is None else token_of(row.last_poll_at)
