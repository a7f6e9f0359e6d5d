"""Storage: SQLAlchemy 2 models, the engine, and the small codec for stored rewrites.

SQLite (WAL mode) is the embedded default; any SQLAlchemy URL works, PostgreSQL included.
Times are stored as naive UTC and always handed back timezone-aware, whatever the backend.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    false,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from aggregator.models import Rewrite, Sentence


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC: SQLite keeps no zone and PostgreSQL may be set to any."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class SourceRow(Base):
    """A configured source and its health, as the operator sees it in ``sources``."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    lean: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="news")
    status: Mapped[str] = mapped_column(String(20), default="new")  # new, ok, failing
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # polling engine: backoff, server requests, publishing rate, response time
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    retry_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # 429/503 Retry-After
    mean_gap_seconds: Mapped[float | None] = mapped_column(Float)  # between new entries
    last_new_entry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mean_response_ms: Mapped[float | None] = mapped_column(Float)  # moving average


class FeedRow(Base):
    """One feed URL of a source, with the validators for its next conditional GET."""

    __tablename__ = "feeds"

    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetch_url: Mapped[str | None] = mapped_column(String(2000))  # after a permanent redirect
    body_hash: Mapped[str | None] = mapped_column(String(64))  # last parsed document


class PollRow(Base):
    """One poll of one feed: the history behind a source's health."""

    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    feed_url: Mapped[str] = mapped_column(String(2000))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[float] = mapped_column(default=0.0)
    http_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))  # new, unchanged, not-modified, error
    error: Mapped[str | None] = mapped_column(Text)
    new_entries: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_polls_source_started", "source_id", "started_at"),)


class EntryRow(Base):
    """An article from a feed, with the text we extracted for it."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(2000))
    link: Mapped[str | None] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(2000))
    text: Mapped[str | None] = mapped_column(Text)  # extracted article text
    extract_error: Mapped[str | None] = mapped_column(Text)
    story_id: Mapped[str | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    # The earlier entry this one repeats (same canonical URL, or near-duplicate syndicated
    # text): one article, shown once, its outlet listed as "via".
    copy_of: Mapped[int | None] = mapped_column(
        ForeignKey("entries.id", ondelete="SET NULL"), index=True
    )
    ident: Mapped[str | None] = mapped_column(String(64))  # link + title, survives GUID changes
    text_available: Mapped[bool] = mapped_column(Boolean, default=True)  # False: paywall

    __table_args__ = (
        UniqueConstraint("source_id", "key", name="uq_entries_source_key"),
        Index("ix_entries_source_ident", "source_id", "ident"),
    )


class TombstoneRow(Base):
    """A pruned entry's identity, so a feed that still lists it does not bring it back."""

    __tablename__ = "tombstones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(2000))
    ident: Mapped[str | None] = mapped_column(String(64))
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_tombstones_source_key", "source_id", "key"),
        Index("ix_tombstones_source_ident", "source_id", "ident"),
    )


class StoryRow(Base):
    """A story: its fixed id, its time span and its current rewrite."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_published: Mapped[datetime] = mapped_column(UTCDateTime)
    last_published: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    headline: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    rewrite_json: Mapped[str | None] = mapped_column(Text)  # sentences with their provenance
    content_html: Mapped[str | None] = mapped_column(Text)
    leans_json: Mapped[str | None] = mapped_column(Text)
    related_json: Mapped[str | None] = mapped_column(Text)
    input_hash: Mapped[str | None] = mapped_column(String(64))  # what the rewrite was made from
    content_hash: Mapped[str | None] = mapped_column(String(64))  # what the rewrite says
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # content last changed
    # Folded into this older story: the row stays so that its id is never reused, and the
    # feed drops it (its articles now belong to the older story).
    merged_into: Mapped[str | None] = mapped_column(String(64), index=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # for the feed's tombstone
    # Attribution, from the story's articles (copies excluded): who was first, who covered it.
    first_source_id: Mapped[str | None] = mapped_column(String(100))
    outlets_json: Mapped[str | None] = mapped_column(Text)  # [[source id, name, lean, via?]]
    count_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    count_center: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    count_right: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Only one side covers it.
    blindspot: Mapped[bool] = mapped_column(default=False, server_default=false())


class StageRow(Base):
    """How long each stage took, for /metrics: last run, total and count (a Prometheus summary)."""

    __tablename__ = "stage_runs"

    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seconds: Mapped[float] = mapped_column(default=0.0)
    total_seconds: Mapped[float] = mapped_column(default=0.0)
    runs: Mapped[int] = mapped_column(Integer, default=0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url`` with the schema in place (SQLite: folder made, WAL on)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Give a database made by an earlier version the columns this one added (and their indexes).

    ``create_all`` only makes missing tables; without this, an upgraded install would fail on
    the first query naming a new column. New columns are nullable or have a default, which
    existing rows take.
    """
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c for c in table.columns if c.name not in have]
            for column in missing:
                ddl = f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" '
                ddl += column.type.compile(engine.dialect)
                default = _default_sql(column, engine)
                if default is not None:
                    ddl += f" DEFAULT {default}"
                conn.execute(text(ddl))
            if missing:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)


def _default_sql(column: Any, engine: Engine) -> str | None:
    """The SQL default of a column: its server default, else a scalar Python-side default."""
    if column.server_default is not None:
        default = column.server_default.arg
        if not isinstance(default, str):
            default = default.compile(dialect=engine.dialect)
        return str(default)
    if column.default is not None and getattr(column.default, "is_scalar", False):
        value = column.default.arg
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
    return None


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


# --- the stored rewrite -----------------------------------------------------------------------


def rewrite_to_json(rewrite: Rewrite) -> str:
    """A rewrite as JSON: each sentence keeps its entry id and sentence index (provenance)."""
    return json.dumps(dataclasses.asdict(rewrite), sort_keys=True, ensure_ascii=False)


def rewrite_from_json(text: str) -> Rewrite:
    data = json.loads(text)
    for key in ("body", "progressive", "conservative", "common_ground", "summary_sentences"):
        data[key] = tuple(
            Sentence(
                **{
                    **s,
                    "cites": tuple(s.get("cites", ())),
                    "reported_by": tuple(tuple(r) for r in s.get("reported_by", ())),
                }
            )
            for s in data.get(key, ())
        )
    data["unavailable"] = tuple(data.get("unavailable", ()))
    return Rewrite(**data)
