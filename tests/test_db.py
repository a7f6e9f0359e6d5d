"""Storage: a database made by an older version gains the new columns and keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect, select

from aggregator import db


def test_older_database_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE sources (id VARCHAR(100) PRIMARY KEY, name VARCHAR(300), "
            "lean VARCHAR(20), kind VARCHAR(20), status VARCHAR(20))"
        )
        conn.execute("INSERT INTO sources VALUES ('old', 'Old News', 'center', 'news', 'ok')")
    engine = db.connect(f"sqlite:///{path}")
    columns = {c["name"] for c in inspect(engine).get_columns("sources")}
    assert {"consecutive_errors", "retry_until", "mean_response_ms", "next_poll_at"} <= columns
    with db.session_factory(engine)() as s:
        row = s.scalars(select(db.SourceRow)).one()
        assert (row.name, row.status, row.consecutive_errors) == ("Old News", "ok", 0)
    db.connect(f"sqlite:///{path}")  # a second start changes nothing and does not fail
