"""Member lifecycle: each enrollment's status history (state, time, reason,
who, and the serials the change touched), and when a cross-certificate's
near expiry was last warned about, so the periodic maintenance warns once
per certificate however many workers run it.

Enrollments existing before this migration get one history row: their
status as of their last update.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_status",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", sa.String(32), sa.ForeignKey("enrollment.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    with op.batch_alter_table("cross_certificate") as batch:
        batch.add_column(sa.Column("expiry_warned_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "INSERT INTO member_status (enrollment_id, status, at, reason, actor, details) "
        "SELECT id, status, updated_at, 'recorded before status history', 'migration 0005', '{}' FROM enrollment"
    )


def downgrade() -> None:
    with op.batch_alter_table("cross_certificate") as batch:
        batch.drop_column("expiry_warned_at")
    op.drop_table("member_status")
