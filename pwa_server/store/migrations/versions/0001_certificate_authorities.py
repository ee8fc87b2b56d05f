"""Certificate authorities and the certificates they issued.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_authorities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("key_token_label", sa.String(32), nullable=False),
        sa.Column("key_label", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_algorithm", sa.String(16), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("sha256_fingerprint", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_certificate_authorities"),
        sa.UniqueConstraint("name", name="uq_certificate_authorities_name"),
        sa.UniqueConstraint(
            "sha256_fingerprint", name="uq_certificate_authorities_sha256_fingerprint"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["certificate_authorities.id"],
            name="fk_certificate_authorities_parent_id_certificate_authorities",
        ),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issuer_id", sa.Integer, nullable=False),
        sa.Column("serial", sa.String(42), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("sha256_fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.UniqueConstraint("sha256_fingerprint", name="uq_certificates_sha256_fingerprint"),
        sa.UniqueConstraint("issuer_id", "serial", name="uq_certificates_issuer_serial"),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authorities.id"],
            name="fk_certificates_issuer_id_certificate_authorities",
        ),
    )


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("certificate_authorities")
