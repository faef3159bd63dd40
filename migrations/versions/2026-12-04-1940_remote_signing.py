"""remote signing (CSC API): access tokens, and authorizations not bound to hashes

Revision ID: 5b8d2e7f1a93
Revises: b7d2e4f6a813
Create Date: 2026-12-04 19:20:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "5b8d2e7f1a93"
down_revision: str | None = "b7d2e4f6a813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "remote_access_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_remote_access_tokens_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_remote_access_tokens")),
    )
    op.create_index(op.f("ix_remote_access_tokens_client_id"), "remote_access_tokens", ["client_id"])
    op.create_index(op.f("ix_remote_access_tokens_expires_at"), "remote_access_tokens", ["expires_at"])
    with op.batch_alter_table("signature_activations") as batch:
        batch.add_column(sa.Column("max_signatures", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signature_activations") as batch:
        batch.drop_column("max_signatures")
    op.drop_index(op.f("ix_remote_access_tokens_expires_at"), table_name="remote_access_tokens")
    op.drop_index(op.f("ix_remote_access_tokens_client_id"), table_name="remote_access_tokens")
    op.drop_table("remote_access_tokens")
