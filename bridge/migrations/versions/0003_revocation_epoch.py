"""Revocation epoch: a counter every trust change increments (approval,
issuance, revocation, CRL, reverse certificate, enrollment status), so every
verifying process can tell in one cheap read whether what it cached is
still current.

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
    counter = sa.table("counter", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counter, [{"name": "epoch", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM counter WHERE name = 'epoch'")
