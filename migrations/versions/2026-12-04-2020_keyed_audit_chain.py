"""keyed audit chain: each event's chain value keyed in the HSM, numbered and chained checkpoints
with time-stamps, the audit key registry

Existing events stay version 1 (SHA-256 chain only) and are verified as before; existing
checkpoints stay version 1 and are numbered 1, 2, ... in the order of the events they cover.

Revision ID: 4e7b2a9c1f60
Revises: 4d2b7e9a1c60
Create Date: 2026-12-04 20:10:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "4e7b2a9c1f60"
down_revision: str | None = "4d2b7e9a1c60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_keys",
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("key_id_hex", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("keyed_from", BigId, nullable=True),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_audit_keys")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain_version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("chain_mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("unsealed_from", BigId, nullable=True))
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("number", BigId, nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("last_mac", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("previous_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("keyed_from", BigId, nullable=True))
        batch.add_column(sa.Column("key_id_hex", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("timestamp_token", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("timestamp_problem", sa.String(length=500), nullable=True))
    op.execute(
        "UPDATE audit_checkpoints SET number = (SELECT COUNT(*) FROM audit_checkpoints AS earlier "
        "WHERE earlier.last_event_id <= audit_checkpoints.last_event_id)"
    )
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.alter_column("number", existing_type=BigId, nullable=False)
        batch.create_unique_constraint(batch.f("uq_audit_checkpoints_number"), ["number"])


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_constraint(batch.f("uq_audit_checkpoints_number"), type_="unique")
        for column in (
            "timestamp_problem", "timestamp_token", "key_id_hex", "keyed_from", "previous_hash", "last_mac",
            "version", "number",
        ):  # fmt: skip
            batch.drop_column(column)
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("unsealed_from")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("chain_mac")
        batch.drop_column("chain_version")
    op.drop_table("audit_keys")
