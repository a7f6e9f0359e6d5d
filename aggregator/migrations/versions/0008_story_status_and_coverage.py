"""The rewrite is stored as data and rendered at publish time (issue 21, item 2).

- ``stories.status``: new (not yet rewritten), ready (published) or merged. It replaces
  ``content_html IS NOT NULL`` as the published flag: a story stored before this revision is
  ready when it had HTML, merged when it was folded into another.
- ``stories.coverage_json``: who covered the story (``Coverage``), which publishing renders
  with the stored rewrite. Every stored value stays as it was: a story stored before keeps
  ``content_html`` (the HTML the older version rendered), which is published as it is until the
  story's next rewrite stores its coverage. The rewrite stage finds such stories (ready, no
  coverage) on its next run and, when their inputs did not change, keeps their stored rewrite
  (read in its older form: ``schema.rewrite_from_json``) and only adds the coverage.

A downgrade clears the input hash of the stories whose HTML only this version rendered (ready,
no ``content_html``), so that the older version rewrites and renders them on its next run;
until then it does not publish them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

stories = sa.table(
    "stories",
    sa.column("content_html", sa.Text),
    sa.column("merged_into", sa.String),
    sa.column("status", sa.String),
    sa.column("input_hash", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="new"))
        batch.add_column(sa.Column("coverage_json", sa.Text(), nullable=True))
    op.execute(stories.update().where(stories.c.merged_into.is_not(None)).values(status="merged"))
    op.execute(
        stories.update()
        .where(stories.c.merged_into.is_(None), stories.c.content_html.is_not(None))
        .values(status="ready")
    )


def downgrade() -> None:
    op.execute(
        stories.update()
        .where(stories.c.status == "ready", stories.c.content_html.is_(None))
        .values(input_hash=None)
    )
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("coverage_json")
        batch.drop_column("status")
