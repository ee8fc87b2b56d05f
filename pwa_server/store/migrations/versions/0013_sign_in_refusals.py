"""Refused console sign-ins counted per client address and minute (issue 17, finding 8),
written to the audit log as one event each.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_refusals",
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("refusals", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("client", "window_start", "reason", name="pk_sign_in_refusals"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_refusals")
