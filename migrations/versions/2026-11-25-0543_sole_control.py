"""sole control: credential factors and signature activations

Revision ID: 00dd6b7776bb
Revises: 1d8a8502b831
Create Date: 2026-11-25 05:43:35.930523+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "00dd6b7776bb"
down_revision: str | None = "1d8a8502b831"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credential_factors",
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("totp_label", sa.String(length=128), nullable=True),
        sa.Column("totp_key_id_hex", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_credential_factors_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_credential_factors")),
    )
    op.create_table(
        "signature_activations",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("hash_algorithm", sa.String(length=16), nullable=False),
        sa.Column("hashes_json", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_signature_activations_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_signature_activations")),
    )
    with op.batch_alter_table("signature_activations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signature_activations_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_signature_activations_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signature_activations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signature_activations_expires_at"))
        batch_op.drop_index(batch_op.f("ix_signature_activations_certificate_id"))

    op.drop_table("signature_activations")
    op.drop_table("credential_factors")
