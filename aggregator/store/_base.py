"""What every domain mixin of :class:`aggregator.store.Store` shares: its session factory."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker


class StoreBase:
    """The state the domain mixins read; :class:`aggregator.store.Store` sets it."""

    session: sessionmaker[Session]
