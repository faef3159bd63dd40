"""The service's own certificates (OCSP responder, TSA): the subscriber lifecycle refuses them
(audited), replacing them is CA administration under dual control (API and CLI operator alike),
and a TSA certificate that is revoked, expired or about to expire is rolled over by the
service's maintenance, so time-stamping never stays down.

The fault campaign revoked the TSA certificate with one admin call (no second officer) and
every B-T, B-LT and B-LTA signature failed until ``govsign init`` was run again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from govsign.api.app import create_app
from govsign.audit.events import AuditQuery
from govsign.errors import ForbiddenError, ServiceCertificateError
from govsign.pki.authority import IssuedCertificate
from govsign.pki.profiles import OCSP_RESPONDER, TSA
from govsign.pki.records import CertificateRecord, CertificateStatus, RevocationReason
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from govsign.storage.approvals import ApprovalRecord
from helpers.deployment import Deployment
from helpers.tsa import query, signed_data, status

OPERATOR = Requester.operator("operator:alice")
SECOND_OPERATOR = Requester.operator("operator:bob")


def _tsa_serial_of(answer: bytes) -> str:
    assert status(answer) == ("granted", set()), status(answer)
    sid = signed_data(answer)["signer_infos"][0]["sid"].chosen
    return format(sid["serial_number"].native, "x")


def _current(services: Services, profile: str) -> CertificateRecord | None:
    with services.database.read_only() as ports:
        return ports.certificates.find_service_certificate(issuer_id="issuing-1", profile=profile)


def _events(services: Services, action: str) -> list[dict[str, object]]:
    return services.audit.search(AuditQuery(action=action, limit=1000))


def _revoke_in_the_core(services: Services, serial: str) -> None:
    """Revoke as nothing in the service may (straight through the CA core): the state the
    campaign left behind, which the maintenance must repair."""
    with services.uow.transaction() as work:
        work.lifecycle.revoke(serial, reason=RevocationReason.KEY_COMPROMISE, actor="test:bypass")


def test_the_subscriber_lifecycle_refuses_the_service_certificates(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    services = d.services
    tsa, responder = d.hierarchy.tsa.serial_hex, d.hierarchy.ocsp_responder.serial_hex
    before = len(_events(services, "certificate.revoke"))
    for serial in (tsa, responder):
        for attempt in (
            lambda s=serial: services.certificates.revoke(s, RevocationReason.KEY_COMPROMISE, OPERATOR),
            lambda s=serial: services.certificates.hold(s, OPERATOR),
            lambda s=serial: services.certificates.release(s, OPERATOR),
            lambda s=serial: services.certificates.renew(s, OPERATOR),
        ):
            with pytest.raises(ServiceCertificateError, match="replace-service-certificate"):
                attempt()
    assert _current(services, TSA.name) == d.hierarchy.tsa
    assert _current(services, OCSP_RESPONDER.name) == d.hierarchy.ocsp_responder
    refusals = [e for e in _events(services, "certificate.revoke") if e["outcome"] == "failure"]
    assert len(refusals) == before + 2, "each refusal is audited"
    assert _tsa_serial_of(services.timestamps.answer(query())) == tsa


@contextmanager
def _api(d: Deployment) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str], dict[str, str]]]:
    """An app over the deployment and the tokens of two administrators and an RA officer."""
    directory = d.services.directory
    directory.add_agency("svc-a", "Bộ Tư pháp", None, actor="test")
    tokens = [
        directory.add_client(f"svc-{role}-{i}", role=role, agency_id="svc-a", actor="test").token
        for i, role in enumerate(("admin", "admin", "ra-officer"))
    ]
    settings = d.settings.model_copy(update={"background_tasks": False})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, *({"Authorization": f"Bearer {token}"} for token in tokens)  # type: ignore[misc]


def test_replacing_the_tsa_through_the_api_needs_a_second_administrator(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    old = d.hierarchy.tsa
    with _api(d) as (api, admin, admin2, officer):
        # the subscriber endpoint: refused with a problem naming the right operation, audited
        refused = api.post(
            f"/api/v1/certificates/{old.serial_hex}/revocation", headers=admin, json={"reason": "key-compromise"}
        )
        assert refused.status_code == 422, refused.text
        assert "/service-certificates/tsa/replacement" in refused.json()["detail"]
        url = "/api/v1/cas/issuing-1/service-certificates/tsa/replacement"
        assert api.post(url, headers=officer, json={}).status_code == 403
        filed = api.post(url, headers=admin, json={"reason": "key-compromise"})
        assert filed.status_code == 202, filed.text
        approval = filed.json()["id"]
        assert _current(d.services, TSA.name) == old, "nothing changes before the approval"
        same = api.post(f"/api/v1/approvals/{approval}/approve", headers=admin)
        assert same.status_code == 403, same.text
        approved = api.post(f"/api/v1/approvals/{approval}/approve", headers=admin2)
        assert approved.status_code == 201, approved.text
        new_serial = approved.json()["serial"]
        assert approved.json()["profile"] == "tsa" and new_serial != old.serial_hex
        shown = api.get(f"/api/v1/certificates/{old.serial_hex}", headers=admin).json()
        assert shown["status"] == "revoked" and shown["revocation"]["reason"] == "key-compromise"
        stamped = api.post("/pki/tsa", content=query(), headers={"Content-Type": "application/timestamp-query"}).content
        assert _tsa_serial_of(stamped) == new_serial, "the new TSA answers at once"
    [event] = [e for e in _events(d.services, "service-certificate.replace") if e["object_id"] == new_serial]
    assert event["details"]["replaces"] == old.serial_hex  # type: ignore[index]


def test_the_cli_operator_files_a_replacement_that_another_operator_approves(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    services, old = d.services, d.hierarchy.ocsp_responder
    filed = services.hierarchy.replace_service_certificate(OCSP_RESPONDER.name, OPERATOR)
    assert isinstance(filed, ApprovalRecord) and filed.status == "pending"
    assert filed.requested_by == OPERATOR.actor
    with pytest.raises(ForbiddenError, match="different officer"):
        services.approvals.decide(filed.id, approve=True, requester=OPERATOR, describe=lambda _r: {})
    done = services.approvals.decide(filed.id, approve=True, requester=SECOND_OPERATOR, describe=lambda _r: {})
    assert isinstance(done, IssuedCertificate) and done.record.profile == OCSP_RESPONDER.name
    current = _current(services, OCSP_RESPONDER.name)
    assert current is not None and current.serial_hex == done.record.serial_hex != old.serial_hex
    responder = services.ocsp.responder()
    assert responder is not None
    credential = responder.directory.responder("issuing-1")
    assert credential is not None and credential.serial_hex == done.record.serial_hex


def test_without_dual_control_the_replacement_happens_at_once(make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment(dual_control="")
    replaced = d.services.hierarchy.replace_service_certificate(TSA.name, OPERATOR)
    assert isinstance(replaced, IssuedCertificate)
    assert _tsa_serial_of(d.services.timestamps.answer(query())) == replaced.record.serial_hex


def test_a_revoked_tsa_certificate_is_rolled_over_and_time_stamping_comes_back(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    services, old = d.services, d.hierarchy.tsa
    assert services.maintenance.rollover_tsa() is None, "a fresh TSA certificate: nothing to do"
    _revoke_in_the_core(services, old.serial_hex)
    assert services.timestamps.authority(reload=True) is None
    assert status(services.timestamps.answer(query()))[0] == "rejection", "time-stamping is down"
    services.maintenance.refresh_ocsp()  # the 30-second maintenance tick
    new = _current(services, TSA.name)
    assert new is not None and new.serial_hex != old.serial_hex and new.status is CertificateStatus.VALID
    assert new.key is not None and old.key is not None and new.key.label != old.key.label
    assert _tsa_serial_of(services.timestamps.answer(query())) == new.serial_hex
    [event] = _events(services, "service-certificate.rollover")
    assert event["object_id"] == new.serial_hex and event["actor"] == "system:tsa-rollover"
    assert services.maintenance.rollover_tsa() is None, "a second tick does nothing"


def test_an_expiring_or_expired_tsa_certificate_is_rolled_over(make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment(tsa_validity_days=30)
    services, clock, first = d.services, d.clock, d.hierarchy.tsa
    clock.advance(dt.timedelta(days=15))
    assert services.maintenance.rollover_tsa() is None, "15 days left of 30"
    clock.advance(dt.timedelta(days=6))  # 9 days left: less than a third
    second = services.maintenance.rollover_tsa()
    assert second is not None and second.serial_hex != first.serial_hex
    assert second.not_after == clock.now() + dt.timedelta(days=30)
    assert _tsa_serial_of(services.timestamps.answer(query())) == second.serial_hex
    clock.advance(dt.timedelta(days=31))  # the service was down past the end: expired
    assert services.timestamps.authority(reload=True) is None
    third = services.maintenance.rollover_tsa()
    assert third is not None and third.serial_hex != second.serial_hex
    assert _tsa_serial_of(services.timestamps.answer(query())) == third.serial_hex
    whys = [e["details"]["why"] for e in _events(services, "service-certificate.rollover")]  # type: ignore[index]
    assert whys == ["expiring", "expired"]
