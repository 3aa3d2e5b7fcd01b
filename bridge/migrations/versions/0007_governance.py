"""Governance: two-person control's proposals (an admin action waiting for a
second administrator), and the signed checkpoints of the audit chain's head
(so a rewrite or truncation of the log is found against a checkpoint held
elsewhere).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposal",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),  # JSON: the action's parameters
        sa.Column("proposer", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        # pending, confirmed, failed (confirmed, but the action was refused), cancelled, expired
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),  # JSON: the action's result or its error
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entries", sa.BigInteger, nullable=False, index=True),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),  # ISO 8601 text, signed exactly as stored
        sa.Column("algorithm", sa.LargeBinary, nullable=False),  # AlgorithmIdentifier DER
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("signer_sha256", sa.String(64), nullable=False),  # of the signing bridge certificate (DER)
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    op.drop_table("proposal")
