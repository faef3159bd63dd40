"""verification report pdf: the sealed PDF rendering of a stored verification report

Revision ID: 7c41d8e2b5f3
Revises: 5e2b9c1d7a40
Create Date: 2026-12-03 13:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d8e2b5f3"
down_revision: str | None = "5e2b9c1d7a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("report_pdf", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("report_pdf")
