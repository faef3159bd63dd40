"""pending keys: HSM keys announced before an issuance generates them, until the certificate commits

Revision ID: 4d2b7e9a1c60
Revises: 3e9c1a7d5b20
Create Date: 2026-12-04 19:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "4d2b7e9a1c60"
down_revision: str | None = "3e9c1a7d5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_keys",
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("label", name=op.f("pk_pending_keys")),
    )
    op.create_index(op.f("ix_pending_keys_created_at"), "pending_keys", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_keys_created_at"), table_name="pending_keys")
    op.drop_table("pending_keys")
