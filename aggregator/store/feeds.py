"""Sources, their feeds and their poll state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from aggregator.config import Source
from aggregator.models import SourceState
from aggregator.store._base import StoreBase
from aggregator.store.entries import counts_by_source
from aggregator.store.schema import FeedRow, SourceRow


class FeedsMixin(StoreBase):
    def sync_sources(self, sources: Sequence[Source]) -> None:
        with self.session.begin() as s:
            for src in sources:
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

    def next_poll_times(self) -> dict[str, datetime | None]:
        with self.session() as s:
            rows = s.execute(select(SourceRow.id, SourceRow.next_poll_at))
            return dict(rows.all())

    def source_states(self) -> dict[str, SourceState]:
        with self.session() as s:
            counts = counts_by_source(s)
            return {
                r.id: SourceState(
                    id=r.id,
                    status=r.status,
                    last_poll_at=r.last_poll_at,
                    last_http_status=r.last_http_status,
                    mean_response_ms=r.mean_response_ms,
                    last_error=r.last_error,
                    failing_since=r.failing_since,
                    last_new_entry_at=r.last_new_entry_at,
                    next_poll_at=r.next_poll_at,
                    entries=counts.get(r.id, 0),
                    consecutive_errors=r.consecutive_errors or 0,
                    retry_until=r.retry_until,
                )
                for r in s.scalars(select(SourceRow))
            }

    def source_identity(self, source_id: str) -> tuple[str, str, str] | None:
        with self.session() as s:
            row = s.get(SourceRow, source_id)
            return (row.name, row.lean, row.kind) if row else None
