"""The store: the only code that runs SQL.

:class:`StoreType` (``base.py``) is the contract, every operation by domain; :class:`Store`
implements it on SQLAlchemy, one mixin per domain (``feeds``, ``polls``, ``entries``,
``grouping``, ``stories``, ``health``, ``leases`` for workers, ``status`` for /status).
``schema`` holds the tables, the engine set-up and the stored-rewrite codec; ``queue`` the
task queue's tables; ``aggregator/migrations`` changes the schema. Callers get plain data
(``models``), never rows.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aggregator import migrations
from aggregator.store.base import StoreType
from aggregator.store.entries import EntriesMixin
from aggregator.store.feeds import FeedsMixin
from aggregator.store.grouping import GroupingMixin
from aggregator.store.health import HealthMixin
from aggregator.store.leases import LeasesMixin
from aggregator.store.polls import PollsMixin
from aggregator.store.schema import (
    Pool,
    SchemaError,
    connect,
    engine_for,
    lasting_url,
    schema_status,
    session_factory,
    shown_url,
    upgrade,
    utcnow,
    why,
)
from aggregator.store.schema import open_existing as _open_existing
from aggregator.store.status import StatusMixin
from aggregator.store.stories import StoriesMixin

# What ``Store.session`` is: the sessions on the store's engine, named here so that code
# outside the store can type it without importing SQLAlchemy's ORM (tests/test_store.py).
Sessions = sessionmaker[Session]

__all__ = [
    "SchemaError",
    "Sessions",
    "Store",
    "StoreType",
    "Pool",
    "connect",
    "engine_for",
    "lasting_url",
    "schema_state",
    "schema_status",
    "shown_url",
    "upgrade",
    "utcnow",
    "why",
]


class Store(
    FeedsMixin,
    PollsMixin,
    EntriesMixin,
    GroupingMixin,
    StoriesMixin,
    HealthMixin,
    LeasesMixin,
    StatusMixin,
):
    """:class:`StoreType` on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self.session: Sessions = session_factory(engine)
        self._owns_engine = owns_engine

    @classmethod
    def open(cls, url: str, *, writable: bool = True) -> Store:
        """The store at ``url``, its schema current (see :func:`connect`: raises ConfigError,
        Unavailable or SchemaError in one line); :meth:`close` lets it go."""
        return cls(connect(url, writable=writable), owns_engine=True)

    @classmethod
    def open_existing(cls, url: str) -> Store | None:
        """The store at ``url`` for reading, or None when there is none yet (nothing is
        created); a database at another schema raises SchemaError."""
        engine = _open_existing(url)
        return None if engine is None else cls(engine, owns_engine=True)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def schema_state(url: str) -> migrations.Status:
    """Where the database at ``url`` stands against this version's migrations (``db status``);
    nothing is created or changed."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return schema_status(conn)
    finally:
        engine.dispose()


def _conforms(store: Store) -> StoreType:
    return store  # mypy checks here that Store implements every method of StoreType
