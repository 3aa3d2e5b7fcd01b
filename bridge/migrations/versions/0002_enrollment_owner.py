"""Enrollment owner: the API token that submitted it, so an issuer sees only its own.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment") as batch:
        batch.add_column(sa.Column("owner_token_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollment") as batch:
        batch.drop_column("owner_token_id")
