"""Server-side console sessions (issue 17, finding 4): a row per sign-in, ended by signing
out, by idling, by an absolute lifetime or from another session ("sign out everywhere").

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "officer_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.String(32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_seen_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_officer_sessions"),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name="fk_officer_sessions_officer_id_officers"
        ),
    )
    op.create_index("ix_officer_sessions_officer_id", "officer_sessions", ["officer_id"])


def downgrade() -> None:
    op.drop_index("ix_officer_sessions_officer_id", table_name="officer_sessions")
    op.drop_table("officer_sessions")
