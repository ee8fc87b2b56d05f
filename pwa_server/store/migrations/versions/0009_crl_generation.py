"""CRLs of many entries (issue 6, item 4): an index from which the CRL query reads one CA's
revoked certificates already in id order, and what lets a CRL be built outside the write
transaction: a count of the CA's revocations, and the number of the CRL kept.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_certificates_issuer_status_id", "certificates", ["issuer_id", "status", "id"]
    )
    with op.batch_alter_table("crl_state") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("stored_number", sa.Integer, nullable=True))
    # Until now a CRL was kept in the transaction that claimed its number, so the number
    # claimed last is the kept CRL's own.
    crl_state = sa.table(
        "crl_state",
        sa.column("crl_number", sa.Integer),
        sa.column("crl_der", sa.LargeBinary),
        sa.column("stored_number", sa.Integer),
    )
    op.execute(
        crl_state.update()
        .where(crl_state.c.crl_der.is_not(None))
        .values(stored_number=crl_state.c.crl_number)
    )


def downgrade() -> None:
    with op.batch_alter_table("crl_state") as batch:
        batch.drop_column("stored_number")
        batch.drop_column("generation")
    op.drop_index("ix_certificates_issuer_status_id", table_name="certificates")
