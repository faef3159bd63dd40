"""Rollover of the delegated OCSP responder certificate (new key in the HSM) and re-signing of the
pre-produced responses by the new responder."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable

from cryptography import x509
from cryptography.x509 import ocsp
from sqlalchemy import select

from govsign.keystore.pkcs11 import OPERATION_COUNTS
from govsign.storage.models import OCSPResponseRow
from helpers.ca import issue_from_csr as issue
from helpers.deployment import Deployment
from helpers.protocols import cryptography_request

from .test_ocsp import verified


def _responder_serial(der: bytes) -> int:
    return ocsp.load_der_ocsp_response(der).certificates[0].serial_number


def test_rollover_issues_a_new_responder_with_a_new_key_and_responses_move_to_it(
    make_deployment: Callable[..., Deployment],
) -> None:
    # Responses valid for 30 days, so after 25 days the stored ones are still fresh and are
    # re-signed only because their responder changed.
    d = make_deployment(ocsp_responder_validity_days=30, ocsp_response_validity_minutes=30 * 24 * 60)
    services, clock = d.services, d.clock
    old = d.hierarchy.ocsp_responder
    assert old.key is not None
    issued = issue(services, common_name="Vũ Văn Luân")
    issuing = d.issuing
    plain = cryptography_request(issued.certificate, issuing)

    assert services.maintenance.rollover_ocsp_responder() is None, "30 days left of 30: nothing to do"
    clock.advance(dt.timedelta(days=19))
    assert services.maintenance.rollover_ocsp_responder() is None, "11 days left: more than a third"

    clock.advance(dt.timedelta(days=6))  # 5 days left: less than a third of 30
    new = services.maintenance.rollover_ocsp_responder()
    assert new is not None and new.key is not None
    assert new.serial_hex != old.serial_hex
    assert new.key.label != old.key.label and new.key.key_id != old.key.key_id
    assert services.keystore.find_key(label=new.key.label, algorithm=new.key.algorithm) == new.key
    assert new.not_before == clock.now()
    assert new.not_after == clock.now() + dt.timedelta(days=30)
    assert services.maintenance.rollover_ocsp_responder() is None, "a second call does nothing"

    # Live answers are signed by the new responder at once.
    answer = services.ocsp.answer(cryptography_request(issued.certificate, issuing, nonce=os.urandom(16)))
    response = verified(answer.der, issuing)
    assert response.certificates[0].serial_number == int(new.serial_hex, 16)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD

    # The stored response signed by the old responder (still valid) is served until refreshed.
    answer = services.ocsp.answer(plain)
    assert answer.pre_produced and _responder_serial(answer.der) == int(old.serial_hex, 16)

    refreshed = services.ocsp.refresh()
    assert refreshed >= 1
    with services.database.read_only() as ports:
        responders = set(ports.session.scalars(select(OCSPResponseRow.responder_serial_hex)))
    assert responders == {new.serial_hex}, "every stored response is now signed by the new responder"
    signs = OPERATION_COUNTS.get("sign", 0)
    answer = services.ocsp.answer(plain)
    assert OPERATION_COUNTS.get("sign", 0) == signs and answer.pre_produced
    response = verified(answer.der, issuing)
    assert response.certificates[0].serial_number == int(new.serial_hex, 16)
    assert response.produced_at_utc == clock.now()
    assert services.ocsp.refresh() == 0, "nothing left to re-sign"

    old_certificate = x509.load_der_x509_certificate(old.certificate_der)
    new_certificate = x509.load_der_x509_certificate(new.certificate_der)
    assert new_certificate.subject == old_certificate.subject
    assert new_certificate.public_key() != old_certificate.public_key()


def test_near_the_issuing_cas_end_the_responder_is_rolled_over_once(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    d.clock.advance(d.hierarchy.issuing.not_after - d.clock.now() - dt.timedelta(days=5))
    first = d.services.maintenance.rollover_ocsp_responder()
    assert first is not None and first.not_after == d.hierarchy.issuing.not_after
    assert d.services.maintenance.rollover_ocsp_responder() is None, "a second responder cannot outlive the first"
