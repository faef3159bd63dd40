"""Status services: CRL numbering and storage, pre-produced OCSP responses

Revision ID: fcd5c91a53da
Revises: bd7f3ede1ff2
Create Date: 2026-11-25 02:48:08.861392+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from govsign.storage.base import UTCDateTime

revision: str = "fcd5c91a53da"
down_revision: str | None = "bd7f3ede1ff2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "crl_state",
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("next_crl_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("change_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("published_change_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("delta_base_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["certificate_authorities.id"], name=op.f("fk_crl_state_ca_id_certificate_authorities")
        ),
        sa.PrimaryKeyConstraint("ca_id", name=op.f("pk_crl_state")),
    )
    op.create_table(
        "crls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("crl_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("base_crl_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("this_update", UTCDateTime(), nullable=False),
        sa.Column("next_update", UTCDateTime(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("crl_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('full', 'delta')", name=op.f("ck_crls_kind")),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["certificate_authorities.id"], name=op.f("fk_crls_ca_id_certificate_authorities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crls")),
        sa.UniqueConstraint("ca_id", "crl_number", name=op.f("uq_crls_ca_id_crl_number")),
    )
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.create_index("ix_crls_ca_kind_number", ["ca_id", "kind", "crl_number"], unique=False)

    op.create_table(
        "ocsp_responses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("serial_hex", sa.String(length=40), nullable=False),
        sa.Column("hash_algorithm", sa.String(length=8), nullable=False),
        sa.Column("cert_status", sa.String(length=8), nullable=False),
        sa.Column("this_update", UTCDateTime(), nullable=False),
        sa.Column("next_update", UTCDateTime(), nullable=False),
        sa.Column("responder_serial_hex", sa.String(length=40), nullable=False),
        sa.Column("response_der", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("cert_status IN ('good', 'revoked', 'unknown')", name=op.f("ck_ocsp_responses_cert_status")),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_ocsp_responses_certificate_id_certificates")
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authorities.id"],
            name=op.f("fk_ocsp_responses_issuer_id_certificate_authorities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocsp_responses")),
        sa.UniqueConstraint(
            "issuer_id",
            "serial_hex",
            "hash_algorithm",
            name=op.f("uq_ocsp_responses_issuer_id_serial_hex_hash_algorithm"),
        ),
    )
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ocsp_responses_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ocsp_responses_next_update"), ["next_update"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocsp_responses_next_update"))
        batch_op.drop_index(batch_op.f("ix_ocsp_responses_certificate_id"))

    op.drop_table("ocsp_responses")
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.drop_index("ix_crls_ca_kind_number")

    op.drop_table("crls")
    op.drop_table("crl_state")
