"""The HSM made unavailable for real, in-process: the PKCS#11 library is finalized (C_Finalize
through python-pkcs11's lib object, what a crashed or unplugged module looks like to the caller).
Calls that need the HSM answer a 503 problem within a second, /readyz says the HSM is down,
nothing is half-written (no certificate row, no key on the token), calls that need only the
database keep working, and after C_Initialize the same calls succeed without restarting the app.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from govsign.keystore.pkcs11 import MODULE_LOCK
from govsign.storage.models import CertificateRow
from helpers.world import AGENCY_A1, World, assert_problem, enrol, enrol_body

WITHIN_SECONDS = 1.0


def certificate_rows(world: World) -> int:
    with world.services.database.read_only() as ports:
        return int(ports.session.scalar(select(func.count()).select_from(CertificateRow)) or 0)


@pytest.fixture
def hsm_library(direct_api: TestClient) -> Iterator[Any]:
    """The app's python-pkcs11 library object; initialised again whatever the test does."""
    lib = direct_api.app.state.services.keystore._lib
    assert lib is not None and lib.initialized
    try:
        yield lib
    finally:
        with MODULE_LOCK:
            if not lib.initialized:
                lib.initialize()


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_hsm_outage_answers_503_and_recovers_without_restart(
    world: World, direct_api: TestClient, hsm_library: Any
) -> None:
    officer = world["ra-officer"]
    keystore = direct_api.app.state.services.keystore
    valid = enrol(direct_api, officer, AGENCY_A1)
    body = enrol_body(AGENCY_A1)
    rows_before = certificate_rows(world)
    keys_before = len(keystore.list_private_keys())
    assert direct_api.get("/readyz").status_code == 200

    with MODULE_LOCK:
        hsm_library.finalize()
    assert not hsm_library.initialized

    enrolment, elapsed = timed(lambda: direct_api.post("/api/v1/certificates", headers=officer.headers, json=body))
    problem = assert_problem(enrolment, 503)
    assert problem["type"].endswith("/unavailable") and enrolment.headers.get("retry-after"), enrolment.headers
    assert elapsed < WITHIN_SECONDS, f"503 after {elapsed:.2f} s"

    for call in (
        lambda: direct_api.post(f"/api/v1/certificates/{valid}/renewal", headers=officer.headers, json={}),
        lambda: direct_api.post("/api/v1/crls", headers=world["admin"].headers),
    ):
        response, elapsed = timed(call)
        assert_problem(response, 503)
        assert elapsed < WITHIN_SECONDS, f"503 after {elapsed:.2f} s"

    ready, elapsed = timed(lambda: direct_api.get("/readyz"))
    assert_problem(ready, 503)
    assert ready.json()["checks"] == {"database": "ok", "hsm": "unavailable"}, ready.json()
    assert elapsed < WITHIN_SECONDS + 1.5  # readiness waits at most 2 s per check

    # What needs only the database still works, and nothing was half-written.
    assert direct_api.get(f"/api/v1/certificates/{valid}", headers=officer.headers).json()["status"] == "valid"
    assert direct_api.get("/api/v1/cas", headers=officer.headers).status_code == 200
    assert certificate_rows(world) == rows_before

    with MODULE_LOCK:
        hsm_library.initialize()

    recovered = direct_api.post("/api/v1/certificates", headers=officer.headers, json=body)
    assert recovered.status_code == 201, recovered.text
    assert direct_api.get("/readyz").status_code == 200
    assert certificate_rows(world) == rows_before + 1
    assert len(keystore.list_private_keys()) == keys_before + 1  # the one key of the recovered enrolment


def test_revocation_during_an_outage_is_all_or_nothing(world: World, direct_api: TestClient, hsm_library: Any) -> None:
    """Revocation changes the database and re-signs the OCSP response: either both, or a 503 and
    the certificate still valid."""
    officer = world["ra-officer"]
    serial = enrol(direct_api, officer, AGENCY_A1)
    with MODULE_LOCK:
        hsm_library.finalize()
    response, elapsed = timed(
        lambda: direct_api.post(
            f"/api/v1/certificates/{serial}/revocation", headers=officer.headers, json={"reason": "superseded"}
        )
    )
    status_during = direct_api.get(f"/api/v1/certificates/{serial}", headers=officer.headers).json()["status"]
    with MODULE_LOCK:
        hsm_library.initialize()
    assert elapsed < WITHIN_SECONDS
    if response.status_code == 503:
        assert_problem(response, 503)
        assert status_during == "valid"
        again = direct_api.post(
            f"/api/v1/certificates/{serial}/revocation", headers=officer.headers, json={"reason": "superseded"}
        )
        assert again.status_code == 200, again.text
    else:
        assert response.status_code == 200 and status_during == "revoked", response.text
    # Either way, once the HSM is back the status service says revoked (no stale "good" answer).
    assert ocsp_status(direct_api, officer.headers, serial) == ocsp.OCSPCertStatus.REVOKED


def ocsp_status(client: TestClient, headers: dict[str, str], serial: str) -> ocsp.OCSPCertStatus:
    chain = client.get(f"/api/v1/certificates/{serial}/chain?format=pem", headers=headers)
    certificate, issuer = x509.load_pem_x509_certificates(chain.content)[:2]
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answer = client.post("/pki/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"})
    assert answer.status_code == 200, answer.text
    parsed = ocsp.load_der_ocsp_response(answer.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, parsed.response_status
    return parsed.certificate_status


def test_the_503_detail_names_no_pkcs11_internals(world: World, direct_api: TestClient, hsm_library: Any) -> None:
    with MODULE_LOCK:
        hsm_library.finalize()
    response = direct_api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=enrol_body(AGENCY_A1))
    with MODULE_LOCK:
        hsm_library.initialize()
    detail = assert_problem(response, 503).get("detail")
    assert isinstance(detail, str) and detail, "the 503 problem must explain itself in a sentence"
    assert "PKCS11" not in detail and "Cryptoki" not in detail and "CKR_" not in detail, detail
