"""How the service's values look on the JSON API: resources, HTTP statuses of outcomes, cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

from govsign.api.schemas import resources as schemas
from govsign.errors import InvalidInputError
from govsign.pki.authority import CertificateView, IssuedCertificate
from govsign.pki.crl import PublishedCRLs
from govsign.pki.records import CARecord, CertificateRecord, CertificateStatus
from govsign.services.idempotency import StoredAnswer
from govsign.services.paging import Page
from govsign.storage.approvals import ApprovalRecord

#: The status of an answer that waits for a second officer's approval.
APPROVAL_PENDING = 202


def certificate_resource(view: CertificateView) -> dict[str, Any]:
    record = view.record
    revocation = None
    if view.revocation is not None and view.status is not CertificateStatus.VALID:
        revocation = schemas.RevocationInfo(
            reason=view.revocation.reason.value,
            revoked_at=view.revocation.revoked_at,
            invalidity_date=view.revocation.invalidity_date,
        )
    return _certificate(record, view.status.value, revocation, view.certificate_pem)


def issued_resource(issued: IssuedCertificate) -> dict[str, Any]:
    return _certificate(issued.record, CertificateStatus.VALID.value, None, issued.certificate_pem)


def _certificate(
    record: CertificateRecord, status: str, revocation: schemas.RevocationInfo | None, pem: str
) -> dict[str, Any]:
    return schemas.Certificate(
        serial=record.serial_hex,
        issuer_id=record.issuer_id,
        status=status,  # type: ignore[arg-type]
        profile=record.profile,
        subject=record.subject,
        email=record.email,
        agency_id=record.agency_id,
        not_before=record.not_before,
        not_after=record.not_after,
        key_algorithm=record.key_algorithm.value,
        key_source="hsm" if record.key is not None else "csr",
        fingerprint_sha256=record.fingerprint_sha256,
        revocation=revocation,
        certificate_pem=pem,
    ).model_dump(mode="json")


def approval_resource(record: ApprovalRecord) -> dict[str, Any]:
    return schemas.Approval(
        id=record.id,
        operation=record.operation,
        target=record.target,
        parameters=record.parameters,
        agency_id=record.agency_id,
        status=record.status,  # type: ignore[arg-type]
        requested_by=record.requested_by,
        requested_at=record.requested_at,
        decided_by=record.decided_by,
        decided_at=record.decided_at,
        result=record.result,
    ).model_dump(mode="json")


def crl_publications(published: Mapping[str, PublishedCRLs]) -> dict[str, Any]:
    return {
        "items": [
            {
                "ca_id": ca_id,
                "crl_number": result.full.number,
                "delta_crl_number": result.delta.number,
                "entries": result.full.entry_count,
            }
            for ca_id, result in published.items()
        ]
    }


def ca_resource(ca: CARecord, certificate_url: str, crl_url: str) -> dict[str, Any]:
    return schemas.CertificateAuthority(
        id=ca.id,
        role=ca.role.value,  # type: ignore[arg-type]
        parent_id=ca.parent_id,
        subject=ca.subject,
        serial=ca.serial_hex,
        key_algorithm=ca.key.algorithm.value,
        not_before=ca.not_before,
        not_after=ca.not_after,
        certificate_url=certificate_url,
        crl_url=crl_url,
    ).model_dump(mode="json")


def outcome(result: object) -> StoredAnswer:
    """The HTTP status and body of an operation's result: a certificate issued (201), a
    certificate changed (200), a request waiting for approval (202), CRLs published (200), a
    rejected request (200)."""
    if isinstance(result, IssuedCertificate):
        return StoredAnswer(code=201, body=issued_resource(result))
    if isinstance(result, CertificateView):
        return StoredAnswer(code=200, body=certificate_resource(result))
    if isinstance(result, ApprovalRecord):
        return StoredAnswer(
            code=APPROVAL_PENDING if result.status == "pending" else 200, body=approval_resource(result)
        )
    if isinstance(result, Mapping):
        return StoredAnswer(code=200, body=crl_publications(result))
    raise TypeError(f"no representation of {type(result).__name__}")


def page(items: list[dict[str, Any]], more: bool, last: object | None) -> dict[str, Any]:
    """A page of resources with the cursor of the next one (None on the last page)."""
    return {"items": items, "next_cursor": encode_cursor(str(last)) if more and last is not None else None}


def certificate_page(found: Page[CertificateView]) -> dict[str, Any]:
    last = found.items[-1].record.id if found.items else None
    return page([certificate_resource(view) for view in found.items], found.more, last or 0)


def approval_page(found: Page[ApprovalRecord]) -> dict[str, Any]:
    last = f"{found.items[-1].requested_at.isoformat()}|{found.items[-1].id}" if found.items else None
    return page([approval_resource(record) for record in found.items], found.more, last)


def encode_cursor(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInputError("The cursor is not one this API returned.") from None


def decode_id_cursor(cursor: str | None) -> int | None:
    """The id after which a page starts, from a cursor of an id-ordered listing."""
    after = decode_cursor(cursor)
    if after is None:
        return None
    if not after.isdigit():
        raise InvalidInputError("The cursor is not one this API returned.")
    return int(after)


def decode_approval_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    decoded = decode_cursor(cursor)
    if decoded is None:
        return None
    stamp, _, approval_id = decoded.partition("|")
    try:
        return dt.datetime.fromisoformat(stamp), approval_id
    except ValueError:
        raise InvalidInputError("The cursor is not one this API returned.") from None


def decode_base64(value: str, what: str) -> bytes:
    """Strict standard base64; InvalidInputError naming the field otherwise."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise InvalidInputError(f"The {what} is not valid base64.") from None
