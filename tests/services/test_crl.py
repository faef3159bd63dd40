"""CRLs through Services.crls.publish and the SQL stores: numbering, contents, deltas, lint, openssl."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from govsign.clock import FixedClock
from govsign.config import Settings
from govsign.pki.crl import PublishedCRLs
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from govsign.storage.models import CRLRow
from helpers.ca import issue_from_csr as issue
from helpers.ca import pem, release, revoke
from helpers.deployment import Deployment
from helpers.protocols import lint_crl, run


def _numbers(published: PublishedCRLs) -> tuple[int, int]:
    return published.full.number, published.delta.number


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _stored_numbers(services: Services, ca_id: str) -> list[int]:
    with services.database.read_only() as ports:
        return list(ports.session.scalars(select(CRLRow.crl_number).where(CRLRow.ca_id == ca_id)))


def _reason(revoked: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def test_crl_numbers_are_consecutive_increasing_and_survive_a_restart(
    initialized_services: Services,
    hierarchy: HierarchyResult,
    hsm_data_dir: Path,
    db_backend: str,
    make_settings: Callable[..., Settings],
) -> None:
    before = {ca: set(_stored_numbers(initialized_services, ca)) for ca in ("root-1", "issuing-1")}
    first = initialized_services.crls.publish(force=True)
    second = initialized_services.crls.publish(force=True)
    assert set(first) == set(second) == {"root-1", "issuing-1"}
    for ca_id in first:
        full, delta = _numbers(first[ca_id])
        assert delta == full + 1, "a complete CRL and its delta take consecutive numbers"
        assert second[ca_id].full.number == delta + 1
        assert second[ca_id].delta.number == second[ca_id].full.number + 1
        assert all(full > n for n in before[ca_id])

    # A restart: a new Services (own engine, own keystore session) on the same database.
    restarted = Services.open(
        make_settings(hsm_data_dir, database_url=db_backend), clock=FixedClock(initialized_services.clock.now())
    )
    try:
        third = restarted.crls.publish(force=True)
        for ca_id in third:
            assert third[ca_id].full.number == second[ca_id].delta.number + 1
            stored = restarted.crls.latest(ca_id, delta=False)
            assert stored is not None and stored.number == third[ca_id].full.number
            crl = x509.load_der_x509_crl(stored.der)
            assert _crl_number(crl) == stored.number
        numbers = _stored_numbers(restarted, "issuing-1")
        assert len(numbers) == len(set(numbers)), "a CRL number was used twice"
    finally:
        restarted.close()


def test_crl_contents_reasons_holds_deltas_lint_and_openssl(
    make_deployment: Callable[..., Deployment], tmp_path: Path
) -> None:
    d = make_deployment(crl_validity_hours=10, crl_delta_base_max_age_hours=1)
    services, clock = d.services, d.clock
    first = services.crls.publish()  # nothing published yet: due for both CAs
    assert set(first) == {"root-1", "issuing-1"}
    base = first["issuing-1"]  # the first complete CRL becomes the delta base
    assert base.full.entry_count == 0 and base.delta.base_number == base.full.number

    compromised, unspecified, held, good = (issue(services, common_name=f"Người dùng {i}") for i in range(4))
    invalid_since = compromised.record.not_before  # the earliest an invalidity date may be
    revoke(services, compromised.record.serial_hex, RevocationReason.KEY_COMPROMISE, invalidity_date=invalid_since)
    revoke(services, unspecified.record.serial_hex, RevocationReason.UNSPECIFIED)
    revoke(services, held.record.serial_hex, RevocationReason.CERTIFICATE_HOLD)

    published = services.crls.publish()  # due because revocations changed, no force needed
    assert set(published) == {"issuing-1"}, "the root's ARL did not change"
    assert services.crls.publish() == {}, "nothing changed and nextUpdate is far: nothing is signed"
    result = published["issuing-1"]
    assert result.full.number == base.delta.number + 1 and result.delta.number == result.full.number + 1

    issuing = d.issuing
    full = x509.load_der_x509_crl(result.full.der)
    delta = x509.load_der_x509_crl(result.delta.der)
    for crl in (full, delta):
        assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
        assert crl.issuer == issuing.subject
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == ski.digest
        assert crl.last_update_utc == clock.now()
        assert crl.next_update_utc == clock.now() + dt.timedelta(hours=10)
        version = asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))["tbs_cert_list"]
        assert version["version"].native == "v2"
    assert _crl_number(full) == result.full.number and _crl_number(delta) == result.delta.number

    freshest = full.extensions.get_extension_for_class(x509.FreshestCRL)
    assert not freshest.critical
    [point] = freshest.value
    assert [n.value for n in point.full_name or []] == ["http://pki.example.gov.vn/pki/crl/issuing-1-delta.crl"]
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == base.full.number
    assert result.delta.base_number == base.full.number
    assert not any(isinstance(e.value, x509.DeltaCRLIndicator) for e in full.extensions)

    for crl in (full, delta):  # the delta lists the same three changes against the empty base
        entry = crl.get_revoked_certificate_by_serial_number(compromised.certificate.serial_number)
        assert entry is not None and _reason(entry) is x509.ReasonFlags.key_compromise
        assert entry.revocation_date_utc == clock.now()
        invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
        assert invalidity.invalidity_date_utc == invalid_since
        entry = crl.get_revoked_certificate_by_serial_number(unspecified.certificate.serial_number)
        assert entry is not None and _reason(entry) is None, "unspecified: RFC 5280 says leave the extension out"
        entry = crl.get_revoked_certificate_by_serial_number(held.certificate.serial_number)
        assert entry is not None and _reason(entry) is x509.ReasonFlags.certificate_hold
        assert crl.get_revoked_certificate_by_serial_number(good.certificate.serial_number) is None
        assert len(crl) == 3

    # Outside tools: pkilint (PKIX, nothing at WARNING or above) and openssl verify -crl_check.
    (tmp_path / "full.crl").write_bytes(result.full.der)
    (tmp_path / "delta.crl").write_bytes(result.delta.der)
    (tmp_path / "arl.crl").write_bytes(first["root-1"].full.der)
    (tmp_path / "arl-delta.crl").write_bytes(first["root-1"].delta.der)
    assert lint_crl(tmp_path / "full.crl") == ""
    assert lint_crl(tmp_path / "delta.crl") == ""
    assert lint_crl(tmp_path / "arl.crl", arl=True) == ""
    assert lint_crl(tmp_path / "arl-delta.crl", arl=True) == ""
    root = d.root
    arl = x509.load_der_x509_crl(first["root-1"].full.der)
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert arl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert arl.is_signature_valid(root.public_key())  # type: ignore[arg-type]

    (tmp_path / "root.pem").write_bytes(pem(d.hierarchy.root.certificate_der))
    (tmp_path / "issuing.pem").write_bytes(pem(d.hierarchy.issuing.certificate_der))
    (tmp_path / "crl.pem").write_bytes(full.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "revoked.pem").write_bytes(compromised.certificate_pem.encode())
    (tmp_path / "good.pem").write_bytes(good.certificate_pem.encode())
    verify: list[str | Path] = [
        "openssl",
        "verify",
        "-crl_check",
        "-CRLfile",
        tmp_path / "crl.pem",
        "-CAfile",
        tmp_path / "root.pem",
    ]
    out = run([*verify, "-untrusted", tmp_path / "issuing.pem", tmp_path / "revoked.pem"])
    assert "certificate revoked" in out.stdout + out.stderr
    out = run([*verify, "-untrusted", tmp_path / "issuing.pem", tmp_path / "good.pem"])
    assert out.returncode == 0 and ": OK" in out.stdout, out.stdout + out.stderr

    # Hold and release across a new delta base: the held certificate is in the base, so the
    # delta after the release carries removeFromCRL and the complete CRL drops it.
    clock.advance(dt.timedelta(hours=2))  # older than crl_delta_base_max_age: a new base is chosen
    rebased = services.crls.publish(force=True)["issuing-1"]
    assert rebased.delta.base_number == rebased.full.number
    new_base = x509.load_der_x509_crl(rebased.full.der)
    assert new_base.get_revoked_certificate_by_serial_number(held.certificate.serial_number) is not None
    assert len(x509.load_der_x509_crl(rebased.delta.der)) == 0, "nothing changed since the new base"

    clock.advance(dt.timedelta(minutes=5))
    release(services, held.record.serial_hex)
    after = services.crls.publish()["issuing-1"]
    assert after.delta.base_number == rebased.full.number, "the base is kept while it is young enough"
    full_after = x509.load_der_x509_crl(after.full.der)
    delta_after = x509.load_der_x509_crl(after.delta.der)
    assert full_after.get_revoked_certificate_by_serial_number(held.certificate.serial_number) is None
    assert len(full_after) == 2
    removed = delta_after.get_revoked_certificate_by_serial_number(held.certificate.serial_number)
    assert removed is not None and _reason(removed) is x509.ReasonFlags.remove_from_crl
    assert len(delta_after) == 1, "only the release changed since the base"
    assert delta_after.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == (
        rebased.full.number
    )
    (tmp_path / "delta-remove.crl").write_bytes(after.delta.der)
    assert lint_crl(tmp_path / "delta-remove.crl") == ""

    numbers = _stored_numbers(services, "issuing-1")
    assert sorted(numbers) == list(range(1, len(numbers) + 1)), "numbers are gap-free and never reused"


def test_any_complete_crl_since_the_base_combined_with_the_latest_delta_gives_the_current_status(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    services = d.services
    base = services.crls.publish()["issuing-1"].full
    held = issue(services, common_name="Tạm Dừng Sau Gốc")
    revoke(services, held.record.serial_hex, RevocationReason.CERTIFICATE_HOLD)
    while_held = services.crls.publish()["issuing-1"]
    release(services, held.record.serial_hex)
    latest = services.crls.publish()["issuing-1"]

    assert latest.delta.base_number == base.number <= while_held.full.number  # an appropriate combination
    complete = x509.load_der_x509_crl(while_held.full.der)
    delta = x509.load_der_x509_crl(latest.delta.der)
    combined = {entry.serial_number: _reason(entry) for entry in complete}
    for entry in delta:
        if _reason(entry) is x509.ReasonFlags.remove_from_crl:
            combined.pop(entry.serial_number, None)
        else:
            combined[entry.serial_number] = _reason(entry)
    assert held.certificate.serial_number not in combined, "released from hold, yet still on hold"


def test_in_a_cas_last_hours_an_unchanged_crl_is_not_signed_again_and_again(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    d.clock.advance(d.hierarchy.issuing.not_after - d.clock.now() - dt.timedelta(hours=3))
    first = d.services.crls.publish()["issuing-1"]
    assert first.full.next_update == d.hierarchy.issuing.not_after
    assert "issuing-1" not in d.services.crls.publish(), "nothing changed, the CRL runs to the CA's end"
