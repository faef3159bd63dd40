"""signature references (what a stamp's verification reference resolves to) and rate counters

Revision ID: 3e9c1a7d5b20
Revises: 5b8d2e7f1a93
Create Date: 2026-12-04 20:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "3e9c1a7d5b20"
down_revision: str | None = "5b8d2e7f1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signature_references",
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("stamp", sa.String(length=16), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_signature_references_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_signature_references")),
    )
    op.create_index(op.f("ix_signature_references_certificate_id"), "signature_references", ["certificate_id"])
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_counters")),
    )


def downgrade() -> None:
    op.drop_table("rate_counters")
    op.drop_index(op.f("ix_signature_references_certificate_id"), table_name="signature_references")
    op.drop_table("signature_references")
