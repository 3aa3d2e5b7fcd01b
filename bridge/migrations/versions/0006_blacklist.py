"""The blacklist (黑名单): entries by key, certificate, issuer and serial, or
subject identity, each with its reason, public and internal notes, evidence
reference, effective time, author, and a soft end (removal keeps the row, so
the register and the audit replay still see it); and the signed publications
of the list (GET /v1/blacklist and its detached CMS signature), one row per
distinct document, so every worker serves the same signed bytes.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blacklist_entry",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("value", sa.Text, nullable=False),  # canonical JSON of the kind's value
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("public_note", sa.Text, nullable=False, server_default=""),
        sa.Column("internal_note", sa.Text, nullable=False, server_default=""),
        sa.Column("evidence", sa.Text, nullable=False, server_default=""),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False, server_default="admin"),  # admin | keyCompromise
        sa.Column("enrollment_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
    )
    op.create_table(
        "blacklist_publication",
        sa.Column("sha256", sa.String(64), primary_key=True),  # of the JSON document
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),  # detached CMS SignedData, DER
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blacklist_publication")
    op.drop_table("blacklist_entry")
