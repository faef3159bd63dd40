"""How the CLI shows results: rich tables for people, JSON for scripts, one sentence for errors."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from govsign.clock import to_vietnam_time
from govsign.pki.authority import CertificateView, IssuedCertificate
from govsign.pki.records import CARecord, CertificateRecord
from govsign.storage.approvals import ApprovalRecord

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def iso_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def certificate_json(view: CertificateView) -> dict[str, Any]:
    revocation = view.revocation
    return {
        "serial": view.record.serial_hex,
        "status": view.status.value,
        "revocation_reason": revocation.reason.value if revocation else None,
        "revoked_at": iso_utc(revocation.revoked_at) if revocation else None,
        "invalidity_date": iso_utc(revocation.invalidity_date) if revocation else None,
        **_record_json(view.record),
        "replaces_serial": view.replaces_serial,
        "certificate_pem": view.certificate_pem,
    }


def issued_json(issued: IssuedCertificate) -> dict[str, Any]:
    return {
        "serial": issued.record.serial_hex,
        "status": "valid",
        **_record_json(issued.record),
        "certificate_pem": issued.certificate_pem,
    }


def _record_json(record: CertificateRecord) -> dict[str, Any]:
    """What the JSON of a certificate shows of its record, between its status and its PEM."""
    return {
        "issuer_id": record.issuer_id,
        "profile": record.profile,
        "subject": record.subject,
        "email": record.email,
        "agency_id": record.agency_id,
        "not_before": iso_utc(record.not_before),
        "not_after": iso_utc(record.not_after),
        "key_algorithm": record.key_algorithm.value,
        "key_source": "hsm" if record.key is not None else "csr",
        "key_label": record.key.label if record.key is not None else None,
        "fingerprint_sha256": record.fingerprint_sha256,
    }


def ca_json(ca: CARecord) -> dict[str, Any]:
    from cryptography import x509

    from govsign.der import certificate_pem

    return {
        "id": ca.id,
        "role": ca.role.value,
        "parent_id": ca.parent_id,
        "subject": ca.subject,
        "serial": ca.serial_hex,
        "key_algorithm": ca.key.algorithm.value,
        "key_label": ca.key.label,
        "not_before": iso_utc(ca.not_before),
        "not_after": iso_utc(ca.not_after),
        "certificate_pem": certificate_pem(x509.load_der_x509_certificate(ca.certificate_der)),
    }


def certificate_table(views: list[CertificateView], title: str | None = None) -> Table:
    table = Table(title=title)
    table.add_column("Serial", no_wrap=True, min_width=16)  # a serial is copied whole: never folded
    for column in ("Status", "Profile", "Subject", "Not after (+07:00)", "Key"):
        table.add_column(column, overflow="fold")
    for view in views:
        record = view.record
        status = view.status.value
        if view.revocation is not None and status != "valid":
            status = f"{status} ({view.revocation.reason.value})"
        table.add_row(
            record.serial_hex,
            status,
            record.profile,
            record.subject,
            to_vietnam_time(record.not_after),
            f"{record.key_algorithm.value} ({'HSM' if record.key else 'CSR'})",
        )
    return table


def show_certificate(view: CertificateView) -> None:
    record = view.record
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("Serial", record.serial_hex),
        ("Status", view.status.value),
        ("Subject", record.subject),
        ("Profile", record.profile),
        ("Issuer", record.issuer_id),
        ("E-mail", record.email or "-"),
        ("Valid from", to_vietnam_time(record.not_before)),
        ("Valid until", to_vietnam_time(record.not_after)),
        ("Key", f"{record.key_algorithm.value} ({'in the HSM: ' + record.key.label if record.key else 'from a CSR'})"),
        ("SHA-256", record.fingerprint_sha256),
    ]
    if view.revocation is not None:
        rows.append(
            (
                "Revocation",
                f"{view.revocation.reason.value} at {to_vietnam_time(view.revocation.revoked_at)} by {view.revocation.actor}",
            )
        )
        if view.revocation.invalidity_date:
            rows.append(("Invalid since", to_vietnam_time(view.revocation.invalidity_date)))
    for label, value in rows:
        table.add_row(label, value)
    stdout.print(table)


def approval_json(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "operation": record.operation,
        "target": record.target,
        "parameters": record.parameters,
        "status": record.status,
        "requested_by": record.requested_by,
        "requested_at": iso_utc(record.requested_at),
        "decided_by": record.decided_by,
        "decided_at": iso_utc(record.decided_at),
        "result": record.result,
    }


def show_pending(record: ApprovalRecord) -> None:
    stdout.print(
        f"Waiting for a second officer: approval request {record.id} ({record.operation} {record.target}); "
        f"another operator runs 'govsign approval approve {record.id}'.",
        highlight=False,
        markup=False,
    )
