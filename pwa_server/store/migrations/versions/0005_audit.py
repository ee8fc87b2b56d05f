"""The audit log: hash-chained events, the head row every append locks, the token keys that
seal the head and their seals.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
# The hash an empty log ends with: the first event's prev_hash.
_GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(32), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    op.create_index("ix_audit_events_subject", "audit_events", ["subject"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("last_event_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The row exists from the start: appends only ever update it, so that two first events
    # can never race to create it.
    op.bulk_insert(head, [{"id": 1, "last_event_id": 0, "last_hash": _GENESIS_HASH}])
    op.create_table(
        "audit_keys",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("key_token_label", sa.String(32), nullable=False),
        sa.Column("key_label", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_algorithm", sa.String(16), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_keys"),
        sa.UniqueConstraint("key_label", name="uq_audit_keys_key_label"),
    )
    op.create_table(
        "audit_seals",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("event_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", _TIME, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("audit_key_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_seals"),
        sa.ForeignKeyConstraint(
            ["audit_key_id"], ["audit_keys.id"], name="fk_audit_seals_audit_key_id_audit_keys"
        ),
    )


def downgrade() -> None:
    op.drop_table("audit_seals")
    op.drop_table("audit_keys")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_subject", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("audit_events")
