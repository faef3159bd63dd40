"""PDF validation (ETSI EN 319 102-1 on pyHanko): what govsign signs verifies at its level;
tampering, revocation and missing trust give the indications the standard names."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from io import BytesIO

import pytest
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Conclusion, Indication, conclude
from helpers.ca import revoke
from helpers.credentials import signing_credential
from helpers.deployment import Deployment
from helpers.pdf import blank_pdf


def _sign(services: Services, credential: SigningCredential, store: KeyStore, level: str) -> bytes:
    evidence = None
    if level in ("B-LT", "B-LTA"):
        evidence = services.evidence.revocation_evidence([credential.certificate_der, *credential.chain_der])
    return sign_pdf(
        blank_pdf(),
        credential,
        store,
        PDFSignatureSpec(level=level),  # type: ignore[arg-type]
        timestamper=LocalTimeStamper(services.timestamps.answer) if level != "B-B" else None,
        evidence=evidence,
    )


def _validate(
    services: Services, hierarchy: HierarchyResult, pdf: bytes, *, own_records: bool = True, fetch: bool = False
):  # type: ignore[no-untyped-def]
    policy = ValidationPolicy(
        trust_anchors=(hierarchy.root.certificate_der,), fetch_revocation=fetch, fetch_timeout_seconds=1
    )
    status = services.verifications.status if own_records else None
    return validate_pdf(BytesIO(pdf), policy, now=services.clock.now(), status=status)


@pytest.mark.parametrize(("level", "expected"), [("B-B", "B"), ("B-T", "T"), ("B-LT", "LT"), ("B-LTA", "LTA")])
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048], ids=["ec", "rsa"])
def test_what_govsign_signs_verifies_at_its_level(
    level: str,
    expected: str,
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signed = _sign(initialized_services, credentials[algorithm], store, level)
    result = _validate(initialized_services, hierarchy, signed)
    assert len(result.signatures) == 1
    report = result.signatures[0]
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages
    assert report.level == f"PAdES-BASELINE-{expected}"
    assert report.integrity and report.valid_at_signing_time
    assert report.coverage in ("entire-document", "entire-revision")
    assert report.signer is not None and report.signer.common_name is not None
    assert len(report.chain) == 3
    assert [ts.indication for ts in result.timestamps] == [Indication.TOTAL_PASSED] * (level == "B-LTA"), (
        result.timestamps
    )


def test_a_changed_byte_in_the_signed_range_is_a_hash_failure(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signed = bytearray(_sign(initialized_services, credentials[KeyAlgorithm.EC_P256], store, "B-B"))
    position = signed.index(b"/MediaBox")
    signed[position + 1 : position + 2] = b"m"  # inside the signed range
    report = _validate(initialized_services, hierarchy, bytes(signed)).signatures[0]
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")
    assert not report.integrity


def test_an_untrusted_root_gives_no_certificate_chain_found(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, initialized_services: Services
) -> None:
    signed = _sign(initialized_services, credentials[KeyAlgorithm.EC_P256], store, "B-B")
    other = ValidationPolicy(trust_anchors=(credentials[KeyAlgorithm.RSA2048].certificate_der,), fetch_revocation=False)
    report = validate_pdf(BytesIO(signed), other, now=initialized_services.clock.now()).signatures[0]
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"


def test_revocation_after_the_time_stamp_keeps_b_t_valid_and_makes_b_b_indeterminate(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment()
    services, hierarchy = deployment.services, deployment.hierarchy
    credential = signing_credential(services, hierarchy, subject=f"CN=Revoked later {secrets.token_hex(4)},C=VN")
    plain = _sign(services, credential, services.keystore, "B-B")
    stamped = _sign(services, credential, services.keystore, "B-T")
    deployment.clock.advance(dt.timedelta(minutes=5))
    serial = format(x509.load_der_x509_certificate(credential.certificate_der).serial_number, "x")
    revoke(services, serial, RevocationReason.KEY_COMPROMISE)
    deployment.clock.advance(dt.timedelta(minutes=5))

    stamped_report = _validate(services, hierarchy, stamped).signatures[0]
    assert (stamped_report.indication, stamped_report.sub_indication) == (Indication.TOTAL_PASSED, None), (
        stamped_report.messages
    )
    assert stamped_report.revocation[0].status == "revoked" and stamped_report.valid_at_signing_time

    plain_report = _validate(services, hierarchy, plain).signatures[0]
    assert (plain_report.indication, plain_report.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")
    assert not plain_report.valid_at_signing_time


def test_known_revocation_data_means_nothing_is_fetched(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    """Fetching is allowed, but our records cover the chain: the (unreachable) AIA URLs are not asked."""
    signed = _sign(initialized_services, credentials[KeyAlgorithm.EC_P256], store, "B-T")
    report = _validate(initialized_services, hierarchy, signed, fetch=True).signatures[0]
    assert report.indication is Indication.TOTAL_PASSED, report.messages
    assert {entry.source for entry in report.revocation} == {"govsign-records"}


def _append_page_content(pdf: bytes) -> bytes:
    """An incremental update after the signature that draws on the page (not permitted)."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 10 10 Td (Da sua) Tj ET")
    contents = page.get("/Contents")
    existing = (
        contents if isinstance(contents, generic.ArrayObject) else generic.ArrayObject([page.raw_get("/Contents")])
    )
    page["/Contents"] = generic.ArrayObject([*existing, writer.add_object(stream)])
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_page_content_changed_after_signing_is_not_permitted(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signed = _sign(initialized_services, credentials[KeyAlgorithm.EC_P256], store, "B-T")
    changed = _append_page_content(signed)
    result = _validate(initialized_services, hierarchy, changed)
    report = result.signatures[0]
    assert report.coverage == "entire-revision"
    assert report.modifications_after_signing == "not-permitted", report.messages
    assert report.indication is Indication.TOTAL_FAILED
    assert conclude(result.signatures, result.timestamps) is Conclusion.INVALID
    assert any(m.code == "coverage.not-permitted" for m in report.messages)
