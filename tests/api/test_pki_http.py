"""The public status endpoints through the FastAPI app (create_app + lifespan, TestClient)."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from govsign.api.app import create_app
from govsign.config import Settings
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from govsign.services.metrics import REGISTRY
from helpers.ca import issue_from_csr as issue
from helpers.ca import revoke
from helpers.deployment import Deployment
from helpers.protocols import asn1_cert_id, asn1_request, cryptography_request, response_status

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


@pytest.fixture
def client(
    initialized_services: Services, db_backend: str, hsm_data_dir: Path, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    """The app on the shared initialised database, without the background loop."""
    settings = make_settings(hsm_data_dir, database_url=db_backend, background_tasks=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _get_path(request_der: bytes) -> str:
    return "/pki/ocsp/" + quote(base64.b64encode(request_der).decode(), safe="")


def _good(client: TestClient, request_der: bytes) -> None:
    reply = client.post("/pki/ocsp", content=request_der, headers=OCSP_REQUEST)
    assert reply.status_code == 200
    assert ocsp.load_der_ocsp_response(reply.content).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_ca_certificates_are_served_as_der(client: TestClient, hierarchy: HierarchyResult) -> None:
    for ca in (hierarchy.issuing, hierarchy.root):
        reply = client.get(f"/pki/ca/{ca.id}.crt")
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/pkix-cert"
        assert reply.content == ca.certificate_der
        etag = reply.headers["etag"]
        assert client.get(f"/pki/ca/{ca.id}.crt", headers={"If-None-Match": etag}).status_code == 304
    for missing in ("/pki/ca/issuing-9.crt", "/pki/ca/NOT..valid.crt", "/pki/crl/issuing-9.crl"):
        reply = client.get(missing)
        assert reply.status_code == 404, missing
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["status"] == 404


def test_complete_and_delta_crls_with_caching_headers(client: TestClient, initialized_services: Services) -> None:
    published = initialized_services.crls.publish(force=True)["issuing-1"]
    for name, stored in (("issuing-1", published.full), ("issuing-1-delta", published.delta)):
        reply = client.get(f"/pki/crl/{name}.crl")
        assert reply.status_code == 200, name
        assert reply.headers["content-type"] == "application/pkix-crl"
        assert reply.content == stored.der
        crl = x509.load_der_x509_crl(reply.content)
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == stored.number
        assert "max-age=" in reply.headers["cache-control"]
        assert parsedate_to_datetime(reply.headers["last-modified"]) == stored.this_update
        assert parsedate_to_datetime(reply.headers["expires"]) == stored.next_update
        etag = reply.headers["etag"]
        again = client.get(f"/pki/crl/{name}.crl", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert client.get(f"/pki/crl/{name}.crl", headers={"If-None-Match": '"other"'}).status_code == 200


def test_ocsp_over_post_and_get_with_rfc5019_caching(
    client: TestClient, initialized_services: Services, hierarchy: HierarchyResult, initialized: Deployment
) -> None:
    issuing = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    issued = issue(initialized_services, common_name="Hồ Thị Mạng")
    request = cryptography_request(issued.certificate, issuing)

    reply = client.post("/pki/ocsp", content=request, headers=OCSP_REQUEST)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(reply.content).certificate_status is ocsp.OCSPCertStatus.GOOD

    reply = client.get(_get_path(request))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(reply.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    directives = {part.strip().split("=")[0]: part.strip() for part in reply.headers["cache-control"].split(",")}
    max_age = int(directives["max-age"].split("=")[1])
    assert 0 < max_age <= initialized.settings.ocsp_http_max_age_seconds
    assert "public" in directives and "no-store" not in directives
    assert parsedate_to_datetime(reply.headers["last-modified"]) == response.this_update_utc
    assert parsedate_to_datetime(reply.headers["expires"]) == response.next_update_utc
    assert reply.headers["etag"].strip('"') == hashlib.sha1(reply.content).hexdigest()
    # base64 with its padding left off, and unencoded "/" "+" in the path, are accepted too
    unpadded = "/pki/ocsp/" + base64.b64encode(request).decode().rstrip("=")
    assert ocsp.load_der_ocsp_response(client.get(unpadded).content).certificate_status is ocsp.OCSPCertStatus.GOOD

    nonce = cryptography_request(issued.certificate, issuing, nonce=os.urandom(16))
    for reply in (client.post("/pki/ocsp", content=nonce, headers=OCSP_REQUEST), client.get(_get_path(nonce))):
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "no-store"
        assert ocsp.load_der_ocsp_response(reply.content).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_bad_ocsp_input_never_gets_a_5xx(
    client: TestClient, initialized_services: Services, hierarchy: HierarchyResult, initialized: Deployment
) -> None:
    issuing = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    issued = issue(initialized_services, common_name="Tạ Văn Bền")
    request = cryptography_request(issued.certificate, issuing)
    many = asn1_request([asn1_cert_id(issuing, n) for n in range(1, 501)])
    over_limit = asn1_request([asn1_cert_id(issuing, n) for n in range(1, initialized.settings.ocsp_max_cert_ids + 2)])

    def post(body: bytes, content_type: str = "application/ocsp-request") -> tuple[int, str | None]:
        reply = client.post("/pki/ocsp", content=body, headers={"Content-Type": content_type})
        assert reply.status_code < 500
        if reply.status_code == 200:
            assert reply.headers["content-type"] == "application/ocsp-response"
            return 200, response_status(reply.content)
        assert reply.headers["content-type"] == "application/problem+json"
        return reply.status_code, None

    assert post(b"") == (200, "malformed_request")
    assert post(random.Random(6960).randbytes(300)) == (200, "malformed_request")
    assert post(request[:20]) == (200, "malformed_request")
    assert post(os.urandom(1024 * 1024)) == (413, None)
    assert post(over_limit) == (200, "malformed_request")
    # 500 CertIDs are 39 KB, over the 16 KiB body limit: refused before parsing (413).
    assert post(many) in ((413, None), (200, "malformed_request"))
    assert post(request, "text/plain") == (415, None)
    assert post(request, "") == (415, None)

    for path in (
        "/pki/ocsp/%25%25%25not-base64%25%25%25",
        "/pki/ocsp/%C3%A9t%C3%A9",
        "/pki/ocsp/" + "A" * 40000,
        _get_path(many),
        "/pki/ocsp/",
    ):
        reply = client.get(path)
        assert reply.status_code < 500, path[:40]
        if reply.status_code == 200:
            assert response_status(reply.content) == "malformed_request", path[:40]
            assert reply.headers["cache-control"] == "no-store"
    _good(client, request)


def test_a_revocation_reaches_the_served_crl_within_seconds_through_the_background_loop(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment(background_tasks=True)
    issued = issue(d.services, common_name="Cao Thị Nhanh")
    with TestClient(create_app(d.settings)) as client:
        initial = _wait_for_crl(client, lambda crl: True)
        assert initial is not None, "the background loop publishes a first CRL at start"
        revoke(d.services, issued.record.serial_hex, RevocationReason.KEY_COMPROMISE)  # another process, say
        serial = issued.certificate.serial_number
        crl = _wait_for_crl(client, lambda crl: crl.get_revoked_certificate_by_serial_number(serial) is not None)
        assert crl is not None, "the revocation was not in the served CRL within 5 s (the contract)"
        delta = x509.load_der_x509_crl(client.get("/pki/crl/issuing-1-delta.crl").content)
        assert delta.get_revoked_certificate_by_serial_number(serial) is not None
        request = cryptography_request(issued.certificate, d.issuing)
        response = ocsp.load_der_ocsp_response(client.get(_get_path(request)).content)
        assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED


def _wait_for_crl(
    client: TestClient, accept: Callable[[x509.CertificateRevocationList], bool], timeout: float = 5.0
) -> x509.CertificateRevocationList | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.get("/pki/crl/issuing-1.crl")
        if reply.status_code == 200:
            crl = x509.load_der_x509_crl(reply.content)
            if accept(crl):
                return crl
        time.sleep(0.1)
    return None


def test_if_none_match_with_a_list_or_a_weak_tag_gets_304(client: TestClient, initialized_services: Services) -> None:
    initialized_services.crls.publish(force=True)
    etag = client.get("/pki/crl/issuing-1.crl").headers["etag"]
    assert client.get("/pki/crl/issuing-1.crl", headers={"If-None-Match": f'"older", {etag}'}).status_code == 304
    assert client.get("/pki/crl/issuing-1.crl", headers={"If-None-Match": f"W/{etag}"}).status_code == 304


def test_nonce_requests_are_signed_by_the_fast_path_on_the_loop_or_in_a_thread_when_the_hsm_is_busy(
    client: TestClient, initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    issuing = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    issued = issue(initialized_services, common_name="Hồ Văn Nhanh")
    local = initialized_services.database.engine.dialect.name == "sqlite"  # a local database: on the loop

    def count(where: str) -> float:
        value = REGISTRY.get_sample_value("govsign_ocsp_live_total", {"method": "POST", "where": where})
        return value or 0.0

    def ask() -> None:
        nonce = os.urandom(20)
        request = asn1_request([asn1_cert_id(issuing, issued.certificate.serial_number)], raw_nonce_value=nonce)
        reply = client.post("/pki/ocsp", content=request, headers=OCSP_REQUEST)
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "no-store"
        response = ocsp.load_der_ocsp_response(reply.content)
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce

    before = count("loop"), count("thread")
    ask()
    assert (count("loop") - before[0], count("thread") - before[1]) == ((1, 0) if local else (0, 1))

    # Another thread holds the PKCS#11 module lock (a key generation, say): the loop does not wait.
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with initialized_services.keystore.held():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        before = count("loop"), count("thread")
        timer = threading.Timer(0.3, release.set)
        timer.start()
        ask()
        assert (count("loop") - before[0], count("thread") - before[1]) == (0, 1)
    finally:
        release.set()
        holder.join()
