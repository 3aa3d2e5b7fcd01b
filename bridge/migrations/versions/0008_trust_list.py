"""Our published trust list (bridge/trust_list.py): each issued list, both
forms' exact signed bytes (the ETSI TS 119 612 XML, the JSON and its detached
CMS signature) under its TSLSequenceNumber and the digest of its content, so
every worker serves the same documents and the sequence number moves only
when the content does; and the ``trust_list`` counter, whose row lock
serialises issuers and whose value is the last sequence number.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trust_list_issue",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("xml", sa.LargeBinary, nullable=True),  # none when no key can sign XML (an SM2-only bridge)
        sa.Column("xml_problem", sa.Text, nullable=True),
        sa.Column("json_document", sa.LargeBinary, nullable=False),
        sa.Column("json_signature", sa.LargeBinary, nullable=False),
    )
    op.execute("INSERT INTO counter (name, value) VALUES ('trust_list', 0)")


def downgrade() -> None:
    op.execute("DELETE FROM counter WHERE name = 'trust_list'")
    op.drop_table("trust_list_issue")
