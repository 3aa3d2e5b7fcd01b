"""Initial schema: enrollments, cross- and reverse certificates, CRLs, counters, API tokens, audit log.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrollment",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("member", sa.String(200), nullable=False, index=True),
        sa.Column("jurisdiction", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("root_der", sa.LargeBinary, nullable=False),
        sa.Column("root_subject", sa.Text, nullable=False),
        sa.Column("spki_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("policy_mappings", sa.Text, nullable=False),
        sa.Column("permitted_subtrees", sa.Text, nullable=False),
        sa.Column("excluded_subtrees", sa.Text, nullable=False),
        sa.Column("path_length", sa.Integer, nullable=True),
        sa.Column("replaces_id", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "cross_certificate",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(64), nullable=False, unique=True),
        sa.Column("enrollment_id", sa.String(32), sa.ForeignKey("enrollment.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tbs_sha256", sa.String(64), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=True),
        sa.Column("not_before", TZ, nullable=True),
        sa.Column("not_after", TZ, nullable=True),
        sa.Column("reserved_at", TZ, nullable=False),
        sa.Column("issued_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
    )
    op.create_table(
        "reverse_certificate",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", sa.String(32), sa.ForeignKey("enrollment.id"), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("not_after", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "crl",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("this_update", TZ, nullable=False),
        sa.Column("next_update", TZ, nullable=False),
    )
    counter = op.create_table(
        "counter",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counter, [{"name": "crl", "value": 0}, {"name": "audit", "value": 0}, {"name": "enroll", "value": 0}])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "api_token", "counter", "crl", "reverse_certificate", "cross_certificate", "enrollment"):
        op.drop_table(table)
