"""Evidence (issue 12): what signed verification receipts name (input
certificates, CMS, signed content or only its hash, CRLs, OCSP responses,
time-stamp tokens), kept by SHA-256 for a bounded time (bridge/evidence.py);
and the ``tsa_serial`` counter, the serial numbers of the bridge's
time-stamps (bridge/tsa.py).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),  # certificate, cms, content, crl, ocsp, timestamp
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("named_at", sa.DateTime(timezone=True), nullable=False, index=True),  # last named by a receipt
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    counter = sa.table("counter", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counter, [{"name": "tsa_serial", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM counter WHERE name = 'tsa_serial'")
    op.drop_table("evidence")
