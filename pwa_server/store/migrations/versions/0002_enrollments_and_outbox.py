"""Enrollments, the transactional outbox, and certificates linked to their enrollment.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("certificate_user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("one_time_password_hash", sa.String(255), nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_at", _TIME, nullable=True),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("otp_verified_at", _TIME, nullable=True),
        sa.Column("secret_question", sa.String(32), nullable=True),
        sa.Column("secret_answer_hash", sa.String(255), nullable=True),
        sa.Column("download_password_hash", sa.String(255), nullable=True),
        sa.Column("download_password_issued_at", _TIME, nullable=True),
        sa.Column("downloads", sa.Integer, nullable=False),
        sa.Column("first_download_at", _TIME, nullable=True),
        sa.Column("download_deadline", _TIME, nullable=True),
        sa.Column("installed_at", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
        sa.UniqueConstraint("certificate_user_id", name="uq_enrollments_certificate_user_id"),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(2048), nullable=False),
        sa.Column("subject", sa.String(998), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("claimed_until", _TIME, nullable=True),
        sa.Column("delivered_at", _TIME, nullable=True),
        sa.Column("failed_at", _TIME, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_messages"),
    )
    # batch mode: SQLite cannot add a foreign key to an existing table in place.
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("enrollment_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_certificates_enrollment_id_enrollments",
            "enrollments",
            ["enrollment_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_constraint("fk_certificates_enrollment_id_enrollments", type_="foreignkey")
        batch.drop_column("enrollment_id")
    op.drop_table("outbox_messages")
    op.drop_table("enrollments")
