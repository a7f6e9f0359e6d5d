"""Related coverage: the search behind "no left-leaning outlet has covered this story yet".

``related_coverage`` holds each entry the grouping compared with a story it did not join,
probable enough to be coverage of a related angle; ``stories.notes_json`` what the reader is
told of each side a story has no article of. Existing stories keep NULL (no notes until their
next rewrite) and have no related entries: their claims stand as they were published.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "related_coverage",
        sa.Column("story_id", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("story_id", "entry_id"),
    )
    op.create_index("ix_related_coverage_entry_id", "related_coverage", ["entry_id"])
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("notes_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("notes_json")
    op.drop_index("ix_related_coverage_entry_id", table_name="related_coverage")
    op.drop_table("related_coverage")
