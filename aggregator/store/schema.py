"""Storage: SQLAlchemy 2 models, the engine, and the small codec for stored rewrites.

SQLite (WAL mode) is the embedded default; any SQLAlchemy URL works, PostgreSQL included.
Times are stored as naive UTC and always handed back timezone-aware, whatever the backend.
The schema changes only through a migration (``aggregator/migrations``), never at start-up.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
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
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from aggregator import migrations
from aggregator.errors import ConfigError, Unavailable
from aggregator.errors import SchemaError as SchemaError  # what connect() raises
from aggregator.models import Coverage, CoverageNote, LeadImage, Rewrite, Sentence
from aggregator.vocab import Empty, Side


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
    image_caption: Mapped[str | None] = mapped_column(Text)  # that picture's caption, plain
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
    # Joined by the side-completion search, below the join threshold (``EntryGrouped``).
    side_join: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

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


class StoryStatus(StrEnum):
    """Where a story stands: grouped and not yet rewritten, published, or folded into another."""

    NEW = "new"
    READY = "ready"
    MERGED = "merged"


class StoryRow(Base):
    """A story: its fixed id, its time span and its current rewrite."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_published: Mapped[datetime] = mapped_column(UTCDateTime)
    last_published: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    headline: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    # Where it stands: new (not yet rewritten), ready (rewritten: published), merged.
    status: Mapped[str] = mapped_column(
        String(16), default=StoryStatus.NEW, server_default=StoryStatus.NEW
    )
    # Its rewrite as data (sentences with their provenance, sections, notes as codes) and who
    # covered it (``Coverage``): what publishing renders, with its templates, at every publish.
    rewrite_json: Mapped[str | None] = mapped_column(Text)
    coverage_json: Mapped[str | None] = mapped_column(Text)
    # The HTML a version before 0008 rendered and stored: published as it is until the story is
    # next rewritten (which stores its coverage and clears this).
    content_html: Mapped[str | None] = mapped_column(Text)
    leans_json: Mapped[str | None] = mapped_column(Text)
    related_json: Mapped[str | None] = mapped_column(Text)
    input_hash: Mapped[str | None] = mapped_column(String(64))  # what the rewrite was made from
    # What readers were last shown (publishing hashes it); ``updated_at`` moves when it changes.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Folded into this older story: the row stays so that its id is never reused, and the
    # feed drops it (its articles now belong to the older story).
    merged_into: Mapped[str | None] = mapped_column(String(64), index=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # for the feed's tombstone
    # Consecutive events of one developing story: the id of the storyline's first story (its
    # own id when it is the first, or stands alone). Linked in the feed, never merged.
    storyline_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Attribution, from the story's articles (copies excluded): who was first, who covered it.
    first_source_id: Mapped[str | None] = mapped_column(String(100))
    outlets_json: Mapped[str | None] = mapped_column(Text)  # [[source id, name, lean, via?]]
    count_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    count_center: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    count_right: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Only one side covers it, and the looser search found nothing of the other side's.
    blindspot: Mapped[bool] = mapped_column(default=False, server_default=false())
    # What the reader is told of each side it has no article of (``CoverageNote`` as JSON).
    notes_json: Mapped[str | None] = mapped_column(Text)
    # The picture it leads with (``LeadImage`` as JSON), chosen from its articles; NULL: none.
    image_json: Mapped[str | None] = mapped_column(Text)


class RelatedRow(Base):
    """An entry the grouping compared with a story it did not join, probable enough to be
    coverage of a related angle of it (``related.RELATED``): what the search behind a
    "not covered" claim reads. Gone with the entry or the story."""

    __tablename__ = "related_coverage"

    story_id: Mapped[str] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    score: Mapped[float] = mapped_column(Float)


class StageRow(Base):
    """How long each stage took, for /metrics: last run, total and count (a Prometheus summary)."""

    __tablename__ = "stage_runs"

    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seconds: Mapped[float] = mapped_column(default=0.0)
    total_seconds: Mapped[float] = mapped_column(default=0.0)
    runs: Mapped[int] = mapped_column(Integer, default=0)


class StageHistoryRow(Base):
    """Each run of a stage, the newest few hundred: the recent cycles /status shows."""

    __tablename__ = "stage_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it ended
    seconds: Mapped[float] = mapped_column(default=0.0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def shown_url(url: str) -> str:
    """``url`` as we print it: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def lasting_url(url: str) -> str:
    """``url`` as another process elsewhere can use it: a relative SQLite path made absolute,
    a password hidden (a record of it must not hold a secret)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    name = parsed.database or ""
    local = name not in ("", ":memory:") and not name.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and local:
        parsed = parsed.set(database=str(Path(name).resolve()))
    return parsed.render_as_string(hide_password=True)


def why(exc: BaseException) -> str:
    """The driver's own first line for a database error, without SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0].strip()


def engine_for(url: str, pool: Pool | None = None) -> Engine:
    """An engine for ``url`` as every command uses it (SQLite: WAL on), schema unchecked:
    :func:`connect` is what commands call. Raises ConfigError when the URL itself is wrong
    (an unknown scheme, a driver that is not installed): that is the operator's to fix."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        args: dict[str, object] = {}
        sizes: dict[str, int] = {}
        if parsed.get_backend_name() == "postgresql":
            args["connect_timeout"] = 10
            if pool is not None:
                args["application_name"] = pool.name
                sizes = {"pool_size": pool.size, "max_overflow": 0}
        return create_engine(url, pool_pre_ping=True, connect_args=args, **sizes)
    except NoSuchModuleError:
        raise ConfigError(
            f"--db {shown_url(url)}: unknown database type {url.partition(':')[0]!r} "
            "(use sqlite:///PATH or postgresql+psycopg://...)"
        ) from None
    except ArgumentError:
        raise ConfigError(f"--db {url!r}: not a database URL (e.g. sqlite:///PATH)") from None
    except ImportError as exc:
        raise ConfigError(f"--db {shown_url(url)}: its driver is not installed ({exc})") from None


@dataclasses.dataclass(frozen=True)
class Pool:
    """A PostgreSQL engine's connections: at most ``size`` (none beyond), each named
    ``name`` in ``pg_stat_activity`` (a worker's, so an operator sees whose they are)."""

    size: int
    name: str


def connect(url: str, *, writable: bool = True, pool: Pool | None = None) -> Engine:
    """An engine for ``url`` whose schema is this version's, checked to be writable now
    (unless ``writable`` is False: a reader such as ``serve`` may well have read-only
    access), so that a command fails in one line before it polls anything.

    An empty database is created at the newest migration; one at an older or unknown schema
    raises :class:`SchemaError` naming ``balanced-news db upgrade`` (see
    ``aggregator/migrations``). Raises ConfigError for a URL that cannot work and
    :class:`Unavailable` for a database that is down, read-only or in a folder we may not
    write.
    """
    engine = engine_for(url, pool)
    where = shown_url(url)
    parsed = engine.url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            engine.dispose()
            raise Unavailable(
                f"database {where}: cannot create the folder {folder}: {exc.strerror or exc}"
            ) from None
    try:
        migrations.ensure_current(engine, url, Base.metadata)
        if writable:
            with engine.connect() as conn, conn.begin() as tx:  # a write of nothing, undone
                conn.execute(text(f"UPDATE {StageRow.__tablename__} SET runs = runs WHERE 1 = 0"))
                tx.rollback()
    except SchemaError:
        engine.dispose()
        raise
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        raise Unavailable(f"database {where}: {why(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_existing(url: str) -> Engine | None:
    """An engine on the database at ``url`` for reading, or None when there is none yet:
    nothing is created (not the file, not its folder, not a table). A database at another
    schema raises :class:`SchemaError`, as :func:`connect` does."""
    engine = engine_for(url)
    parsed = engine.url
    if parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or not Path(parsed.database).is_file()
    ):
        engine.dispose()
        return None
    try:
        with engine.connect() as conn:
            found = migrations.status(conn, Base.metadata)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise Unavailable(f"database {shown_url(url)}: {why(exc)}") from None
    if found.state == "empty":
        engine.dispose()
        return None
    if found.state != "current":
        engine.dispose()
        raise SchemaError(migrations.message(url, found))
    return engine


def schema_status(connection: Connection) -> migrations.Status:
    """Where the database stands against this version's migrations (``db status``)."""
    return migrations.status(connection, Base.metadata)


def upgrade(url: str) -> tuple[migrations.Status, migrations.Status]:
    """``balanced-news db upgrade``: create or upgrade the database; its status before, after."""
    return migrations.upgrade(url, Base.metadata)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- the stored rewrite -----------------------------------------------------------------------


def rewrite_to_json(rewrite: Rewrite) -> str:
    """A rewrite as JSON: each sentence keeps its entry id and sentence index (provenance)."""
    return json.dumps(dataclasses.asdict(rewrite), sort_keys=True, ensure_ascii=False, default=str)


def rewrite_from_json(text: str) -> Rewrite:
    """A stored rewrite; one stored before 0008 (a lede, an empty section's reason in the
    words the reader was shown) is read as its codes (``vocab.Empty``), its lede left to
    publishing. Reasons older versions worded otherwise read as none: their stories' inputs
    changed since (the rewrite's version is in the input hash), so they are rewritten anew."""
    data = json.loads(text)
    if "lede" in data:
        del data["lede"]
        for key, side in _SECTIONS:
            data[key] = _wordings(side).get(data.get(key) or "")
    for key in ("body", "progressive", "conservative", "common_ground", "summary_sentences"):
        data[key] = tuple(
            Sentence(
                **{
                    **s,
                    "cites": tuple(s.get("cites", ())),
                    "according_to": tuple(s.get("according_to", ())),
                    "reported_by": tuple(tuple(r) for r in s.get("reported_by", ())),
                }
            )
            for s in data.get(key, ())
        )
    data["unavailable"] = tuple(data.get("unavailable", ()))
    data["notes"] = notes_from_json(data.get("notes", []))
    return Rewrite(**data)


# The reasons an empty section gave before 0008, in the words the reader was shown.
_SECTIONS: tuple[tuple[str, str | None], ...] = (
    ("progressive_missing", "left"),
    ("conservative_missing", "right"),
    ("common_ground_missing", None),
)


def _wordings(side: str | None) -> dict[str, Empty]:
    if side is None:
        return {
            "What left- and right-leaning outlets both report is told above.": Empty.TOLD_ABOVE,
            "Left- and right-leaning outlets do not yet report the same facts here.": (
                Empty.NONE_FOUND
            ),
        }
    return {
        f"What only {side}-leaning outlets report here is told above.": Empty.TOLD_ABOVE,
        f"Nothing here that only {side}-leaning outlets report or argue.": Empty.NONE_FOUND,
    }


def coverage_to_json(coverage: Coverage) -> str:
    return json.dumps(dataclasses.asdict(coverage), ensure_ascii=False, default=str)


def coverage_from_json(text: str) -> Coverage:
    data = json.loads(text)
    return Coverage(
        **{
            **{k: tuple(tuple(v) for v in data[k]) for k in _COVERAGE_PAIRS},
            "first_source": data["first_source"],
            "first_published": datetime.fromisoformat(data["first_published"]),
            "leans": tuple(data["leans"]),
        }
    )


_COVERAGE_PAIRS = ("outlets", "via", "articles", "copies", "owners")  # tuples of tuples


def image_to_json(image: LeadImage | None) -> str | None:
    return json.dumps(dataclasses.asdict(image), ensure_ascii=False) if image else None


def image_from_json(text: str | None) -> LeadImage | None:
    return LeadImage(**json.loads(text)) if text else None


def notes_to_json(notes: tuple[CoverageNote, ...]) -> str:
    return json.dumps([dataclasses.asdict(n) for n in notes], default=str, ensure_ascii=False)


def notes_from_json(data: list[dict[str, Any]] | str | None) -> tuple[CoverageNote, ...]:
    """Coverage notes from their JSON (a string, or already decoded with a rewrite)."""
    items = json.loads(data) if isinstance(data, str) else data or []
    return tuple(
        CoverageNote(
            **{
                **n,
                "side": Side(n["side"]),
                "published": datetime.fromisoformat(n["published"]) if n.get("published") else None,
            }
        )
        for n in items
    )
