"""stamp images: the seal or signature image a credential's visible signatures show

Revision ID: 1cb0a2e4a42a
Revises: 00dd6b7776bb
Create Date: 2026-11-25 07:11:36.998839+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "1cb0a2e4a42a"
down_revision: str | None = "00dd6b7776bb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stamp_images",
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_stamp_images_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_stamp_images")),
    )


def downgrade() -> None:
    op.drop_table("stamp_images")
