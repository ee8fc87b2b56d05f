"""Officers of the console: officers, their WebAuthn keys, one-time invitation links.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "officers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_sign_in_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_officers"),
    )
    op.create_table(
        "officer_credentials",
        sa.Column("credential_id", sa.LargeBinary, nullable=False),
        sa.Column("officer_id", sa.String(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("transports", sa.Text, nullable=False),
        sa.Column("aaguid", sa.String(36), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("device_type", sa.String(16), nullable=False),
        sa.Column("backed_up", sa.Boolean, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("last_challenge_issued_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("credential_id", name="pk_officer_credentials"),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name="fk_officer_credentials_officer_id_officers"
        ),
    )
    op.create_index("ix_officer_credentials_officer_id", "officer_credentials", ["officer_id"])
    op.create_table(
        "officer_invitations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_officer_invitations"),
        sa.UniqueConstraint("token_sha256", name="uq_officer_invitations_token_sha256"),
        sa.UniqueConstraint("officer_id", name="uq_officer_invitations_officer_id"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["officers.id"], name="fk_officer_invitations_created_by_officers"
        ),
    )


def downgrade() -> None:
    op.drop_table("officer_invitations")
    op.drop_index("ix_officer_credentials_officer_id", table_name="officer_credentials")
    op.drop_table("officer_credentials")
    op.drop_table("officers")
