"""verifications: stored verification reports (the report and the document's hash)

Revision ID: 5e2b9c1d7a40
Revises: 1cb0a2e4a42a
Create Date: 2026-12-03 09:15:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "5e2b9c1d7a40"
down_revision: str | None = "1cb0a2e4a42a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("document_type", sa.String(length=16), nullable=False),
        sa.Column("conclusion", sa.String(length=16), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("etsi_xml", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(op.f("ix_verifications_created_at"), "verifications", ["created_at"], unique=False)
    op.create_index(op.f("ix_verifications_document_sha256"), "verifications", ["document_sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_verifications_document_sha256"), table_name="verifications")
    op.drop_index(op.f("ix_verifications_created_at"), table_name="verifications")
    op.drop_table("verifications")
