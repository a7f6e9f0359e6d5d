"""Health and metrics: failing sources, poll outcomes, stage timings."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select

from aggregator.models import SourceStatus, StageEvent, StageRun
from aggregator.store._base import StoreBase
from aggregator.store.schema import PollRow, SourceRow, StageHistoryRow, StageRow, utcnow

FAILING = ("failing", "parked")
KEPT_STAGE_RUNS = 500  # the history behind /status's recent cycles: about 100 cycles


class HealthMixin(StoreBase):
    def failing_sources(self, among: Collection[str]) -> list[SourceStatus]:
        with self.session() as s:
            rows = s.scalars(
                select(SourceRow).where(SourceRow.status.in_(FAILING)).order_by(SourceRow.name)
            )
            return [
                SourceStatus(
                    r.name,
                    r.failing_since or utcnow(),
                    ("parked, retried daily: " if r.status == "parked" else "")
                    + (r.last_error or ""),
                )
                for r in rows
                if r.id in among
            ]

    def count_failing(self) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(SourceRow)
            return s.scalar(query.where(SourceRow.status.in_(FAILING))) or 0

    def poll_outcomes(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(PollRow.outcome, func.count()).group_by(PollRow.outcome))
            return dict(rows.all())

    def record_stage(self, stage: str, seconds: float, at: datetime) -> None:
        with self.session.begin() as s:
            row = s.get(StageRow, stage)
            if row is None:
                row = StageRow(stage=stage, total_seconds=0.0, runs=0)
                s.add(row)
            row.last_at = at
            row.last_seconds = seconds
            row.total_seconds += seconds
            row.runs += 1
            event = StageHistoryRow(stage=stage, at=at, seconds=seconds)
            s.add(event)
            s.flush()
            s.execute(
                delete(StageHistoryRow).where(StageHistoryRow.id <= event.id - KEPT_STAGE_RUNS)
            )

    def stage_runs(self) -> dict[str, StageRun]:
        with self.session() as s:
            return {
                r.stage: StageRun(r.last_at, r.last_seconds, r.total_seconds, r.runs)
                for r in s.scalars(select(StageRow))
            }

    def stage_history(self, limit: int) -> list[StageEvent]:
        with self.session() as s:
            rows = s.scalars(
                select(StageHistoryRow).order_by(StageHistoryRow.id.desc()).limit(limit)
            ).all()
            return [StageEvent(r.stage, r.at, r.seconds) for r in reversed(rows)]
