"""Relying sites: API keys, rate windows, idempotency keys, redeemed return assertions;
enrollments and webhook messages linked to their site; an index on due outbox messages.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("return_urls", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("webhook_secret_salt", sa.String(64), nullable=True),
        sa.Column("default_profile", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
        sa.UniqueConstraint("name", name="uq_sites_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_api_keys_site_id_sites"),
    )
    op.create_index("ix_api_keys_site_id", "api_keys", ["site_id"])
    op.create_table(
        "api_rate_windows",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key_id", "window_start", name="pk_api_rate_windows"),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name="fk_api_rate_windows_key_id_api_keys"
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("enrollment_id", sa.String(32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_idempotency_keys_site_id_sites"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_idempotency_keys_enrollment_id_enrollments",
        ),
    )
    op.create_table(
        "redeemed_assertions",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("redeemed_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("jti", name="pk_redeemed_assertions"),
    )
    # batch mode: SQLite cannot add a foreign key to an existing table in place.
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("site_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("return_url", sa.String(2048), nullable=True))
        batch.create_foreign_key("fk_enrollments_site_id_sites", "sites", ["site_id"], ["id"])
        batch.create_index("ix_enrollments_site_id", ["site_id"])
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("site_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_outbox_messages_site_id_sites", "sites", ["site_id"], ["id"])
        batch.create_index("ix_outbox_messages_site_id", ["site_id"])
        batch.create_index("ix_outbox_messages_due", ["channel", "next_attempt_at"])


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_messages_due")
        batch.drop_index("ix_outbox_messages_site_id")
        batch.drop_constraint("fk_outbox_messages_site_id_sites", type_="foreignkey")
        batch.drop_column("site_id")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_index("ix_enrollments_site_id")
        batch.drop_constraint("fk_enrollments_site_id_sites", type_="foreignkey")
        batch.drop_column("return_url")
        batch.drop_column("site_id")
    op.drop_table("redeemed_assertions")
    op.drop_table("idempotency_keys")
    op.drop_table("api_rate_windows")
    op.drop_table("api_keys")
    op.drop_table("sites")
