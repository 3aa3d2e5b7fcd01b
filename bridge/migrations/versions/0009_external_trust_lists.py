"""External trusted lists (ETSI TS 119 612) the bridge recognises: each
registered list (where it is fetched from, the certificates allowed to sign
it, the mapping of its service types and policies onto the bridge's), and
every version accepted, kept whole so that the status a service had at any
past time can be answered from the list that said it.

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
    op.create_table(
        "external_trust_list",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text, nullable=True),  # None: uploaded versions only
        sa.Column("allowed_signers", sa.Text, nullable=False),  # JSON list of base64 DER certificates
        sa.Column("mapping", sa.Text, nullable=False, server_default="{}"),  # JSON, see bridge/trust_lists.py
        sa.Column("status", sa.String(16), nullable=False),  # active, removed
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetch_error", sa.Text, nullable=True),
    )
    op.create_table(
        "external_trust_list_version",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_id", sa.String(32), sa.ForeignKey("external_trust_list.id"), nullable=False, index=True),
        sa.Column("sequence_number", sa.BigInteger, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("xml", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),  # JSON: the signature check's result
        sa.Column("schema_check", sa.Text, nullable=False),  # JSON: the schema check's result
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),  # fetch, upload
        sa.UniqueConstraint("list_id", "sequence_number", name="uq_external_trust_list_version_sequence"),
    )


def downgrade() -> None:
    op.drop_table("external_trust_list_version")
    op.drop_table("external_trust_list")
