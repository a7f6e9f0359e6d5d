"""Alembic's entry point: run the migrations on the connection ``aggregator.migrations`` hands
over, or, from the ``alembic`` command line (developers), on ``-x db=URL``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from aggregator import migrations
from aggregator.store.schema import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters a column by copying its table: autogenerate says so
        compare_type=True,
        transactional_ddl=True,  # always inside our transaction (SQLite: BEGIN IMMEDIATE)
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("db")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("name the database: alembic -x db=URL ...")
    engine = migrations.migration_engine(url)
    with engine.begin() as connection:
        migrations.lock(connection)
        run(connection)
    engine.dispose()
