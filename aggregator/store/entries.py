"""Entries: the articles read from feeds."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.store._base import StoreBase
from aggregator.store.schema import EntryRow


def counts_by_source(s: Session) -> dict[str, int]:
    """How many entries each source has stored (sources with none are absent)."""
    rows = s.execute(select(EntryRow.source_id, func.count()).group_by(EntryRow.source_id))
    return dict(rows.all())


class EntriesMixin(StoreBase):
    def entry_counts(self) -> dict[str, int]:
        with self.session() as s:
            return counts_by_source(s)

    def count_entries(self) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(EntryRow)) or 0
