"""Baseline: the schema of balanced-news before migrations (commit 5e8b103).

A fresh database gets every table. A database made by an earlier version, which upgraded
itself at start-up by adding columns, gets what that path added: each missing table, each
missing column (NOT NULL only where it has a default the existing rows take) and each
missing index. Rows are never touched. The schema is frozen here, not imported from
``aggregator.store.schema``, so later model changes never change what this step does.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

schema = sa.MetaData()
DateTime = sa.DateTime()  # aggregator.store.schema.UTCDateTime stores naive UTC in a plain DATETIME

sa.Table(
    "sources",
    schema,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("lean", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False, info={"default": "'news'"}),
    sa.Column("status", sa.String(20), nullable=False, info={"default": "'new'"}),
    sa.Column("last_poll_at", DateTime),
    sa.Column("last_ok_at", DateTime),
    sa.Column("last_error", sa.Text()),
    sa.Column("last_http_status", sa.Integer()),
    sa.Column("failing_since", DateTime),
    sa.Column("next_poll_at", DateTime),
    sa.Column("consecutive_errors", sa.Integer(), nullable=False, info={"default": "0"}),
    sa.Column("retry_until", DateTime),
    sa.Column("mean_gap_seconds", sa.Float()),
    sa.Column("last_new_entry_at", DateTime),
    sa.Column("mean_response_ms", sa.Float()),
)
sa.Table(
    "feeds",
    schema,
    sa.Column("url", sa.String(2000), primary_key=True),
    sa.Column(
        "source_id", sa.String(100), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("etag", sa.Text()),
    sa.Column("last_modified", sa.Text()),
    sa.Column("last_poll_at", DateTime),
    sa.Column("fetch_url", sa.String(2000)),
    sa.Column("body_hash", sa.String(64)),
)
sa.Table(
    "polls",
    schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "source_id", sa.String(100), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("feed_url", sa.String(2000), nullable=False),
    sa.Column("started_at", DateTime, nullable=False),
    sa.Column("seconds", sa.Double(), nullable=False, info={"default": "0"}),
    sa.Column("http_status", sa.Integer()),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("error", sa.Text()),
    sa.Column("new_entries", sa.Integer(), nullable=False, info={"default": "0"}),
    sa.Index("ix_polls_source_started", "source_id", "started_at"),
)
sa.Table(
    "stories",
    schema,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", DateTime, nullable=False),
    sa.Column("first_published", DateTime, nullable=False),
    sa.Column("last_published", DateTime, nullable=False),
    sa.Column("headline", sa.Text()),
    sa.Column("summary", sa.Text()),
    sa.Column("rewrite_json", sa.Text()),
    sa.Column("content_html", sa.Text()),
    sa.Column("leans_json", sa.Text()),
    sa.Column("related_json", sa.Text()),
    sa.Column("input_hash", sa.String(64)),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("updated_at", DateTime),
    sa.Column("merged_into", sa.String(64)),
    sa.Column("merged_at", DateTime),
    sa.Column("first_source_id", sa.String(100)),
    sa.Column("outlets_json", sa.Text()),
    sa.Column("count_left", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("count_center", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("count_right", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("blindspot", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index("ix_stories_last_published", "last_published"),
    sa.Index("ix_stories_merged_into", "merged_into"),
)
sa.Table(
    "entries",
    schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "source_id", sa.String(100), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("key", sa.String(2000), nullable=False),
    sa.Column("link", sa.String(2000)),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("author", sa.Text()),
    sa.Column("published_at", DateTime, nullable=False),
    sa.Column("updated_at", DateTime),
    sa.Column("fetched_at", DateTime, nullable=False),
    sa.Column("summary", sa.Text()),
    sa.Column("content", sa.Text()),
    sa.Column("image", sa.String(2000)),
    sa.Column("text", sa.Text()),
    sa.Column("extract_error", sa.Text()),
    sa.Column("story_id", sa.String(64), sa.ForeignKey("stories.id", ondelete="SET NULL")),
    sa.Column("copy_of", sa.Integer(), sa.ForeignKey("entries.id", ondelete="SET NULL")),
    sa.Column("ident", sa.String(64)),
    sa.Column("text_available", sa.Boolean(), nullable=False, info={"default": "TRUE"}),
    sa.UniqueConstraint("source_id", "key", name="uq_entries_source_key"),
    sa.Index("ix_entries_source_ident", "source_id", "ident"),
    sa.Index("ix_entries_story_id", "story_id"),
    sa.Index("ix_entries_copy_of", "copy_of"),
)
sa.Table(
    "tombstones",
    schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("source_id", sa.String(100), nullable=False),
    sa.Column("key", sa.String(2000), nullable=False),
    sa.Column("ident", sa.String(64)),
    sa.Column("pruned_at", DateTime, nullable=False),
    sa.Index("ix_tombstones_source_key", "source_id", "key"),
    sa.Index("ix_tombstones_source_ident", "source_id", "ident"),
)
sa.Table(
    "stage_runs",
    schema,
    sa.Column("stage", sa.String(40), primary_key=True),
    sa.Column("last_at", DateTime, nullable=False),
    sa.Column("last_seconds", sa.Double(), nullable=False, info={"default": "0"}),
    sa.Column("total_seconds", sa.Double(), nullable=False, info={"default": "0"}),
    sa.Column("runs", sa.Integer(), nullable=False, info={"default": "0"}),
)


def _default(column: sa.Column, dialect: sa.Dialect) -> str | None:
    """The SQL an existing row takes for a column added to it: its server default, else the
    value the models gave new rows (kept in ``info``), as the pre-migration upgrade did."""
    if column.server_default is not None:
        arg = column.server_default.arg  # type: ignore[attr-defined]
        return arg if isinstance(arg, str) else str(arg.compile(dialect=dialect))
    value = column.info.get("default")
    if value == "TRUE" and dialect.name == "sqlite":
        return "1"
    return value


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in schema.sorted_tables:
        if table.name not in present:
            table.create(bind)  # with its indexes
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            default = _default(column, bind.dialect)
            op.add_column(
                table.name,
                sa.Column(
                    column.name,
                    column.type,
                    nullable=column.nullable or default is None,
                    server_default=sa.text(default) if default is not None else None,
                ),
            )
        indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    raise NotImplementedError(
        "the baseline cannot be undone (it would drop every table): restore a backup instead"
    )
