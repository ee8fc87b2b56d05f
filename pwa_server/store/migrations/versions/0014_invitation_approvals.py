"""Dual control over who becomes a security officer (issue 17, finding 3): an invitation of a
security officer needs the approvals of other security officers, as a key ceremony does.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("officer_invitations") as batch:
        batch.add_column(
            sa.Column("approvals_required", sa.Integer, nullable=False, server_default="1")
        )
    op.create_table(
        "invitation_approvals",
        sa.Column("invitation_id", sa.Integer, nullable=False),
        sa.Column("officer_id", sa.String(32), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invitation_id", "officer_id", name="pk_invitation_approvals"),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["officer_invitations.id"],
            name="fk_invitation_approvals_invitation_id_officer_invitations",
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name="fk_invitation_approvals_officer_id_officers"
        ),
    )


def downgrade() -> None:
    op.drop_table("invitation_approvals")
    with op.batch_alter_table("officer_invitations") as batch:
        batch.drop_column("approvals_required")
