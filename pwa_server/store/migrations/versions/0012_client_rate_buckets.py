"""Token buckets per client address in front of the forms that check a secret and of officer
sign-in (issue 17, finding 7).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_rate_buckets",
        sa.Column("bucket", sa.String(80), nullable=False),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_client_rate_buckets"),
    )
    op.create_index("ix_client_rate_buckets_updated_at", "client_rate_buckets", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_client_rate_buckets_updated_at", "client_rate_buckets")
    op.drop_table("client_rate_buckets")
