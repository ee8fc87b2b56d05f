"""Guesses that stop counting when their check never ends (issue 17, finding 12), and
throttles of wrong download passwords instead of a lock (finding 5).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(
            sa.Column("guesses_in_flight", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("guess_lease_until", _TIME, nullable=True))
    op.create_table(
        "guess_throttles",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("retry_at", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ix_guess_throttles_updated_at", "guess_throttles", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_guess_throttles_updated_at", table_name="guess_throttles")
    op.drop_table("guess_throttles")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("guess_lease_until")
        batch.drop_column("guesses_in_flight")
