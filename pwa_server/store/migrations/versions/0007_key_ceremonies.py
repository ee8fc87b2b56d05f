"""Key ceremonies under dual control: proposals and the security officers' approvals.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "key_ceremonies",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target_authority_id", sa.Integer, nullable=True),
        sa.Column("proposed_by", sa.String(32), nullable=False),
        sa.Column("proposed_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_by", sa.String(32), nullable=True),
        sa.Column("closed_at", _TIME, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_key_ceremonies"),
        sa.ForeignKeyConstraint(
            ["target_authority_id"],
            ["certificate_authorities.id"],
            name="fk_key_ceremonies_target_authority_id_certificate_authorities",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["officers.id"], name="fk_key_ceremonies_proposed_by_officers"
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["officers.id"], name="fk_key_ceremonies_closed_by_officers"
        ),
    )
    op.create_table(
        "ceremony_approvals",
        sa.Column("ceremony_id", sa.Integer, nullable=False),
        sa.Column("officer_id", sa.String(32), nullable=False),
        sa.Column("approved_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("ceremony_id", "officer_id", name="pk_ceremony_approvals"),
        sa.ForeignKeyConstraint(
            ["ceremony_id"],
            ["key_ceremonies.id"],
            name="fk_ceremony_approvals_ceremony_id_key_ceremonies",
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name="fk_ceremony_approvals_officer_id_officers"
        ),
    )


def downgrade() -> None:
    op.drop_table("ceremony_approvals")
    op.drop_table("key_ceremonies")
