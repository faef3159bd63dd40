"""stamp image width: the registered width on paper (a seal's diameter) of a stamp image

Revision ID: 9a3e6f1c2d84
Revises: 7c41d8e2b5f3
Create Date: 2026-12-03 13:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a3e6f1c2d84"
down_revision: str | None = "7c41d8e2b5f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stamp_images") as batch:
        batch.add_column(sa.Column("width_mm", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stamp_images") as batch:
        batch.drop_column("width_mm")
