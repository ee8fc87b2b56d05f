"""Renewal (seed 004): an enrollment may keep its previous certificate valid at the next
download instead of revoking it as superseded; and the date of the latest issuance notice
(the download guide), from which a certificate's validity counts (seed 001).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(
            sa.Column(
                "keep_previous_certificate",
                sa.Boolean,
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(sa.Column("issuance_notice_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("issuance_notice_at")
        batch.drop_column("keep_previous_certificate")
