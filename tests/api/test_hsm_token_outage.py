"""A real HSM outage under a running `govsign serve`: SoftHSM2's token directory is taken away
(renamed) and given back, as a token that is pulled out or a network HSM that goes away.

The service runs in a child process on a data dir and token store of its own (never the
session's shared token), with one worker and with two (each worker has its own HSM session
and its own watch, and each must come back). While the token is away, /readyz says so within a second, every
operation that needs the HSM is refused at once (503 problems; OCSP tryLater; TSA
systemFailure), what needs only the database keeps working, nothing is half-written, and each
refusal is audited. When the token is back, the service's own HSM watch notices it and
signing, OCSP and the TSA work again within 5 seconds, without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from helpers.cli import GOVSIGN, base_environment, free_port
from helpers.pdf import blank_pdf
from helpers.tsa import query, status
from helpers.world import LEAK_MARKERS, ORGANIZATION_SUBJECT, enrol_body, tag

AGENCY = "outage-agency"
PIN = "outage-Pin-2468"
#: /readyz must turn 503 this soon after the token is gone (the issue's bound).
DOWN_WITHIN_SECONDS = 1.0
#: Everything must work again this soon after the token is back (the issue's bound).
RECOVERED_WITHIN_SECONDS = 5.0
#: A refusal while the keystore is down must not wait for the HSM.
REFUSED_WITHIN_SECONDS = 1.0


@dataclass
class Served:
    """A running `govsign serve` on a data dir of its own, with a client per role."""

    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    tokens: dict[str, str]
    log: Path
    workers: int

    @property
    def token_dir(self) -> Path:
        return self.data_dir / "tokens"

    @property
    def away_dir(self) -> Path:
        return self.data_dir / "tokens.away"

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def take_token_away(self) -> float:
        os.rename(self.token_dir, self.away_dir)
        return time.monotonic()

    def give_token_back(self) -> float:
        os.rename(self.away_dir, self.token_dir)
        return time.monotonic()

    def certificate_rows(self) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.data_dir / 'govsign.sqlite3'}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM certificates").fetchone()[0])


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([GOVSIGN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"govsign {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    workers = int(request.param)
    work = Path(tempfile.mkdtemp(prefix="govsign-hsm-outage-"))
    port = free_port()
    env = base_environment()
    env.update(
        GOVSIGN_DATA_DIR=str(work / "data"),
        GOVSIGN_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        GOVSIGN_HSM_PIN=PIN,
        GOVSIGN_LINT_WITH_PKILINT="false",
        GOVSIGN_DUAL_CONTROL="",
    )
    _run(["init", "--root-key", "ec-p256", "--issuing-key", "ec-p256", "--service-key", "ec-p256"], env, work)
    _run(["agency", "add", AGENCY, "--name", "Sở Tư pháp thử nghiệm"], env, work)
    tokens = {}
    for role in ("admin", "ra-officer", "signer", "auditor"):
        created = json.loads(
            _run(["client", "add", f"outage-{role}", "--role", role, "--agency", AGENCY, "--json"], env, work)
        )
        tokens[role] = created["token"]
    log = work / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [GOVSIGN, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=work,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Served(f"http://127.0.0.1:{port}", work / "data", process, tokens, log, workers)
    try:
        _until(lambda: _status(service, "/readyz") == 200, 60, "serve did not become ready", service)
        yield service
    finally:
        if service.away_dir.exists() and not service.token_dir.exists():
            service.give_token_back()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def api(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        yield client
    if served.away_dir.exists() and not served.token_dir.exists():
        served.give_token_back()


def _status(service: Served, path: str) -> int | None:
    try:
        return httpx.get(service.base_url + path, timeout=5).status_code
    except httpx.HTTPError:
        return None


def _until(condition: Callable[[], bool], seconds: float, message: str, service: Served | None = None) -> float:
    """Poll ``condition`` until it holds; the seconds it took (a deadline loop, not a timing)."""
    started = time.monotonic()
    while not condition():
        if service is not None and service.process.poll() is not None:
            raise AssertionError(f"serve exited: {service.log.read_text(errors='replace')[-3000:]}")
        assert time.monotonic() - started < seconds, message
        time.sleep(0.05)
    return time.monotonic() - started


def _all_back(api: httpx.Client, served: Served, downs_before: int, ups_before: int) -> bool:
    """Every worker whose watch saw the token go has seen it come back (and one at least has)."""
    downs = len(_events(api, served, "hsm.unavailable")) - downs_before
    ups = len(_events(api, served, "hsm.available")) - ups_before
    return ups >= 1 and ups == downs


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _problem_503(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    assert response.headers.get("retry-after"), response.headers
    body = response.json()
    assert body["status"] == 503 and body["type"].endswith("/unavailable"), body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    for marker in (*LEAK_MARKERS, "PKCS11", "CKR_", "Cryptoki", "GeneralError"):
        assert marker not in response.text, (marker, response.text)
    return dict(body)


def _enrol(api: httpx.Client, served: Served, profile: str = "individual") -> httpx.Response:
    body = enrol_body(AGENCY, profile=profile)
    if profile == "organization":
        body["subject"] = ORGANIZATION_SUBJECT.format(tag=tag())
    return api.post("/api/v1/certificates", headers=served.headers("ra-officer"), json=body)


def _sign_pdf(api: httpx.Client, served: Served, seal: str, level: str) -> httpx.Response:
    return api.post(
        "/api/v1/signatures/pdf",
        headers={**served.headers("signer"), "Content-Type": "application/pdf"},
        params={"credential": seal, "level": level},
        content=blank_pdf(),
    )


def _sign_cms(api: httpx.Client, served: Served, seal: str, level: str) -> httpx.Response:
    return api.post(
        "/api/v1/signatures/cms",
        headers={**served.headers("signer"), "Content-Type": "application/octet-stream"},
        params={"credential": seal, "level": level},
        content=b"a document",
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ocsp_request(api: httpx.Client, served: Served, serial: str, *, nonce: bool) -> bytes:
    chain = api.get(f"/api/v1/certificates/{serial}/chain?format=pem", headers=served.headers("ra-officer"))
    assert chain.status_code == 200, chain.text
    certificate, issuer = x509.load_pem_x509_certificates(chain.content)[:2]
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _ocsp(api: httpx.Client, request: bytes) -> ocsp.OCSPResponse:
    answer = api.post("/pki/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"})
    assert answer.status_code == 200, answer.text
    return ocsp.load_der_ocsp_response(answer.content)


def _ocsp_get(api: httpx.Client, request: bytes) -> ocsp.OCSPResponse:
    answer = api.get("/pki/ocsp/" + base64.b64encode(request).decode("ascii"))
    assert answer.status_code == 200, answer.text
    return ocsp.load_der_ocsp_response(answer.content)


def _timestamp(api: httpx.Client, nonce: int) -> tuple[str, set[str]]:
    answer = api.post("/pki/tsa", content=query(nonce=nonce), headers={"Content-Type": "application/timestamp-query"})
    assert answer.status_code == 200, answer.text
    return status(answer.content)


def _events(api: httpx.Client, served: Served, action: str) -> list[dict[str, Any]]:
    response = api.get("/api/v1/audit", headers=served.headers("auditor"), params={"action": action, "limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_token_taken_away_and_given_back(served: Served, api: httpx.Client) -> None:
    seal = _enrol(api, served, "organization").json()["serial"]
    subscriber = _enrol(api, served).json()["serial"]
    good_request = _ocsp_request(api, served, seal, nonce=False)
    revoked_request = _ocsp_request(api, served, subscriber, nonce=False)
    assert _sign_pdf(api, served, seal, "B-T").status_code == 200
    assert _ocsp(api, good_request).certificate_status == ocsp.OCSPCertStatus.GOOD
    rows_before = served.certificate_rows()
    events_before = {
        action: len(_events(api, served, action))
        for action in (
            "certificate.issue",
            "signature.create",
            "crl.publish",
            "tsa.timestamp",
            "ocsp.respond",
            "hsm.unavailable",
            "hsm.available",
        )
    }

    # -- the token goes away --------------------------------------------------------------
    gone_at = served.take_token_away()
    waited = _until(lambda: _status(served, "/readyz") == 503, DOWN_WITHIN_SECONDS, "/readyz still 200 after 1 s")
    assert waited < DOWN_WITHIN_SECONDS
    ready = api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"] == {"database": "ok", "hsm": "unavailable"}, ready.text

    for call in (
        lambda: _enrol(api, served),
        lambda: _sign_pdf(api, served, seal, "B-B"),
        lambda: _sign_pdf(api, served, seal, "B-T"),
        lambda: _sign_pdf(api, served, seal, "B-LT"),
        lambda: _sign_cms(api, served, seal, "B-T"),
        lambda: api.post(
            "/api/v1/signatures/digests",
            headers=served.headers("signer"),
            json={"credential": seal, "digest_algorithm": "sha256", "digests": [_b64(bytes(32))], "output": "raw"},
        ),
        lambda: api.post("/api/v1/crls", headers=served.headers("admin")),
    ):
        response, elapsed = _timed(call)
        _problem_503(response)
        assert elapsed < REFUSED_WITHIN_SECONDS, f"refused after {elapsed:.2f} s"
    assert _timestamp(api, nonce=1) == ("rejection", {"system_failure"})
    live = _ocsp_request(api, served, seal, nonce=True)  # a nonce needs a live signature
    assert _ocsp(api, live).response_status == ocsp.OCSPResponseStatus.TRY_LATER
    # what needs only the database keeps working: a pre-produced OCSP answer, reads
    assert _ocsp_get(api, good_request).certificate_status == ocsp.OCSPCertStatus.GOOD
    shown = api.get(f"/api/v1/certificates/{seal}", headers=served.headers("ra-officer"))
    assert shown.status_code == 200 and shown.json()["status"] == "valid", shown.text
    # a revocation is all or nothing: refused (the certificate still valid) or done (and never
    # answered "good" from a stale pre-produced response)
    revocation = api.post(
        f"/api/v1/certificates/{subscriber}/revocation",
        headers=served.headers("ra-officer"),
        json={"reason": "superseded"},
    )
    status_during = api.get(f"/api/v1/certificates/{subscriber}", headers=served.headers("ra-officer")).json()
    if revocation.status_code == 503:
        _problem_503(revocation)
        assert status_during["status"] == "valid"
    else:
        assert revocation.status_code == 200 and status_during["status"] == "revoked", revocation.text
        answer = _ocsp(api, revoked_request)
        assert answer.response_status == ocsp.OCSPResponseStatus.TRY_LATER, answer.response_status
    assert served.certificate_rows() == rows_before  # no certificate row of the refused enrolment
    assert served.process.poll() is None

    # -- the token comes back: the service's HSM watch notices, no request needed ----------
    back_at = served.give_token_back()
    took = _until(
        lambda: _all_back(api, served, events_before["hsm.unavailable"], events_before["hsm.available"]),
        RECOVERED_WITHIN_SECONDS,
        "the HSM watch of every worker did not bring the token back within 5 s",
    )
    assert took < RECOVERED_WITHIN_SECONDS
    assert api.get("/readyz").status_code == 200
    assert _enrol(api, served).status_code == 201
    assert _sign_pdf(api, served, seal, "B-T").status_code == 200
    assert _sign_cms(api, served, seal, "B-T").status_code == 200
    assert _timestamp(api, nonce=2) == ("granted", set())
    assert _ocsp(api, _ocsp_request(api, served, seal, nonce=True)).certificate_status == ocsp.OCSPCertStatus.GOOD
    if revocation.status_code == 503:
        again = api.post(
            f"/api/v1/certificates/{subscriber}/revocation",
            headers=served.headers("ra-officer"),
            json={"reason": "superseded"},
        )
        assert again.status_code == 200, again.text
    assert _ocsp(api, revoked_request).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert time.monotonic() - back_at < 60 and back_at > gone_at

    # -- every refusal is in the audit log, and so are the outage's start and end ------------
    def refusals(action: str) -> list[dict[str, Any]]:
        new = _events(api, served, action)[events_before[action] :]
        return [e for e in new if e["outcome"] == "failure" and e["details"].get("error") == "unavailable"]

    assert len(refusals("certificate.issue")) == 1, _events(api, served, "certificate.issue")
    assert len(refusals("signature.create")) >= 5, _events(api, served, "signature.create")  # each one above
    assert [e["actor"] for e in refusals("crl.publish")] == ["client:outage-admin"], _events(api, served, "crl.publish")
    tsa_refused = refusals("tsa.timestamp")
    assert sum(e["details"]["refused"] for e in tsa_refused) >= 2, tsa_refused  # ours, and the B-T's
    assert sum(e["details"]["refused"] for e in refusals("ocsp.respond")) >= 1
    downs = _events(api, served, "hsm.unavailable")[events_before["hsm.unavailable"] :]
    ups = _events(api, served, "hsm.available")[events_before["hsm.available"] :]
    assert 1 <= len(downs) == len(ups) <= served.workers, (downs, ups)
    assert all(d["outcome"] == "failure" for d in downs) and min(u["id"] for u in ups) > min(d["id"] for d in downs)
    assert served.process.poll() is None  # the same process throughout: no restart


def test_an_outage_with_no_traffic_is_noticed_and_ended_by_the_hsm_watch(served: Served, api: httpx.Client) -> None:
    """No request touches the HSM: the service's own watch notices that the token is gone
    (within a second or so) and that it is back (within 5 s), and signing works at once."""
    seal = _enrol(api, served, "organization").json()["serial"]
    downs, ups = len(_events(api, served, "hsm.unavailable")), len(_events(api, served, "hsm.available"))
    served.take_token_away()
    _until(
        lambda: len(_events(api, served, "hsm.unavailable")) == downs + served.workers,
        3.0,
        "the HSM watch of every worker did not see the token go",
    )
    served.give_token_back()
    took = _until(
        lambda: _all_back(api, served, downs, ups),
        RECOVERED_WITHIN_SECONDS,
        "the HSM watch of every worker did not bring the token back within 5 s",
    )
    assert took < RECOVERED_WITHIN_SECONDS
    for _ in range(4 * served.workers):  # whichever worker answers
        assert _sign_pdf(api, served, seal, "B-T").status_code == 200
        assert api.get("/readyz").status_code == 200
