"""The current CRL of each CA and its growing number.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crl_state",
        sa.Column("authority_id", sa.Integer, nullable=False),
        sa.Column("crl_number", sa.Integer, nullable=False),
        sa.Column("crl_der", sa.LargeBinary, nullable=True),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("authority_id", name="pk_crl_state"),
        sa.ForeignKeyConstraint(
            ["authority_id"],
            ["certificate_authorities.id"],
            name="fk_crl_state_authority_id_certificate_authorities",
        ),
    )


def downgrade() -> None:
    op.drop_table("crl_state")
