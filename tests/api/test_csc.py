"""The CSC remote-signing API (v2, and v1 field names) as a signing app uses it: access tokens,
credential discovery, the SAD (an official's activation bound to exactly the hashes, with PIN
and one-time code; a seal's without factors), signHash with PKCS#1 v1.5, RSASSA-PSS and ECDSA,
time-stamps; errors as CSC error objects; each signature and each refusal audited, nothing
signed on a refusal."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import subprocess
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update

from govsign.audit.events import AuditQuery
from govsign.storage.models import SignatureActivationRow
from helpers.pdf import blank_pdf, pdfsig, require_tool
from helpers.world import AGENCY_A1, World, signature_events

SHA256 = "2.16.840.1.101.3.4.2.1"
RSA = "1.2.840.113549.1.1.1"
SHA256_RSA = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
PIN = "582913"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def totp(secret_base32: str, step: int) -> str:
    seed = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(seed, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return str((int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % 1_000_000).zfill(6)


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
        yield client


def csc_token(api: TestClient, world: World, caller: str = "signer") -> dict[str, str]:
    response = api.post("/csc/v2/auth/login", headers=world[caller].headers, json={})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 3600 and body["access_token"].startswith("gsc_")
    return {"Authorization": f"Bearer {body['access_token']}"}


def assert_csc_error(response: Response, status: int, error: str = "invalid_request") -> str:
    """``response`` is a CSC error object with ``status`` and ``error``; its description."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    assert body["error_description"] and "Traceback" not in response.text, body
    return str(body["error_description"])


def pkeyutl_verifies(public_key: Any, digest: bytes, signature: bytes, tmp_path: Path, *options: str) -> None:
    """``openssl pkeyutl -verify`` accepts ``signature`` over the ``digest`` (the independent check)."""
    (tmp_path / "pub.pem").write_bytes(
        public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "digest.bin").write_bytes(digest)
    (tmp_path / "sig.bin").write_bytes(signature)
    done = subprocess.run(
        [require_tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
         "-in", str(tmp_path / "digest.bin"), "-sigfile", str(tmp_path / "sig.bin"), *options],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done.stdout + done.stderr


def enrol(api: TestClient, world: World, profile: str, key: str = "ec-p256", uid: str | None = None) -> str:
    tag = secrets.token_hex(3)
    subject = (
        f"CN=Nguyễn Văn Xa {tag},O=Bộ Tư pháp,C=VN" if profile == "individual" else f"CN=Vụ {tag},O=Bộ Tư pháp,C=VN"
    )
    if uid:
        subject = f"UID={uid},{subject}"
    body: dict[str, Any] = {"profile": profile, "subject": subject, "key_algorithm": key, "agency_id": AGENCY_A1}
    if profile == "individual":
        body["email"] = "xa@moj.gov.vn"
    response = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


def official(
    api: TestClient, world: World, *, with_totp: bool = False, key: str = "ec-p256", uid: str | None = None
) -> tuple[str, str | None]:
    serial = enrol(api, world, "individual", key, uid)
    ra = world["ra-officer"].headers
    assert api.put(f"/api/v1/credentials/{serial}/factors/pin", headers=ra, json={"pin": PIN}).status_code == 204
    secret = None
    if with_totp:
        enrolled = api.post(f"/api/v1/credentials/{serial}/factors/totp", headers=ra)
        assert enrolled.status_code == 201, enrolled.text
        secret = enrolled.json()["secret"]
    return serial, secret


def certificate(api: TestClient, token: dict[str, str], serial: str) -> x509.Certificate:
    info = api.post("/csc/v2/credentials/info", headers=token, json={"credentialID": serial, "certificates": "single"})
    assert info.status_code == 200, info.text
    return x509.load_der_x509_certificate(base64.b64decode(info.json()["cert"]["certificates"][0]))


def test_info_login_oauth2_and_revoke(world: World, api: TestClient) -> None:
    for version, specs in (("v2", "2.0.0.2"), ("v1", "1.0.4.0")):
        info = api.post(f"/csc/{version}/info", json={})
        assert info.status_code == 200 and info.json()["specs"] == specs, info.text
        assert "signatures/signHash" in info.json()["methods"]
    # a govsign token is not a CSC access token; a CSC token is not a govsign token
    listed = api.post("/csc/v2/credentials/list", headers=world["signer"].headers, json={})
    assert "access token" in assert_csc_error(listed, 401, "invalid_token")
    assert listed.headers["www-authenticate"].startswith("Bearer")
    token = csc_token(api, world)
    assert api.get("/api/v1/cas", headers=token).status_code == 401
    assert api.post("/csc/v2/credentials/list", headers=token, json={}).status_code == 200

    signer = world["signer"]
    granted = api.post(
        "/csc/v2/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": signer.client_id, "client_secret": signer.token},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "Bearer" and granted.headers["cache-control"] == "no-store"
    wrong = api.post(
        "/csc/v2/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "someone-else", "client_secret": signer.token},
    )
    assert_csc_error(wrong, 401, "invalid_token")
    assert_csc_error(api.post("/csc/v2/oauth2/token", data={"grant_type": "password"}), 400)

    revoked = api.post("/csc/v2/auth/revoke", headers=token, json={"token": token["Authorization"][7:]})
    assert revoked.status_code == 204, revoked.text
    assert_csc_error(api.post("/csc/v2/credentials/list", headers=token, json={}), 401, "invalid_token")


def test_credentials_list_by_user_and_info_with_chain_scal_and_factors(world: World, api: TestClient) -> None:
    uid = f"CCCD:0771900{secrets.randbelow(10**5):05d}"
    serial, _ = official(api, world, with_totp=True, uid=uid)
    seal = enrol(api, world, "organization", "rsa2048")
    token = csc_token(api, world)
    everything = api.post("/csc/v2/credentials/list", headers=token, json={}).json()["credentialIDs"]
    assert serial in everything and seal in everything
    mine = api.post("/csc/v1/credentials/list", headers=token, json={"userID": uid})
    assert mine.json() == {"credentialIDs": [serial]}, mine.text
    other_agency = csc_token(api, world, "signer@B")
    assert serial not in api.post("/csc/v2/credentials/list", headers=other_agency, json={}).json()["credentialIDs"]

    info = api.post(
        "/csc/v2/credentials/info",
        headers=token,
        json={"credentialID": serial, "certificates": "chain", "certInfo": True, "authInfo": True},
    ).json()
    assert info["SCAL"] == "2" and info["multisign"] == 100 and info["key"]["len"] == 256
    assert ECDSA_SHA256 in info["key"]["algo"] and info["key"]["status"] == "enabled"
    assert len(info["cert"]["certificates"]) == 3 and info["cert"]["status"] == "valid"
    assert info["cert"]["serialNumber"] == serial and "UID=" + uid in info["cert"]["subjectDN"]
    assert info["auth"]["expression"] == "PIN AND OTP"
    assert [item["id"] for item in info["auth"]["objects"]] == ["PIN", "OTP"]
    v1 = api.post("/csc/v1/credentials/info", headers=token, json={"credentialID": seal}).json()
    assert v1["SCAL"] == "1" and v1["key"]["len"] == 2048 and RSA_PSS in v1["key"]["algo"] and "PIN" not in v1
    assert len(v1["cert"]["certificates"]) == 1
    elsewhere = api.post("/csc/v2/credentials/info", headers=other_agency, json={"credentialID": serial})
    assert_csc_error(elsewhere, 403, "access_denied")
    assert_csc_error(api.post("/csc/v2/credentials/info", headers=token, json={"credentialID": "zz"}), 400)
    assert "credentialID" in assert_csc_error(api.post("/csc/v2/credentials/info", headers=token, json={}), 400)


def test_an_official_signs_exactly_the_authorized_hashes_with_pin_and_otp(
    world: World, api: TestClient, tmp_path: Path
) -> None:
    serial, secret = official(api, world, with_totp=True)
    assert secret is not None
    token = csc_token(api, world)
    digests = [hashlib.sha256(f"công văn {i}".encode()).digest() for i in range(3)]
    auth = {
        "credentialID": serial,
        "numSignatures": 3,
        "hashes": [_b64(d) for d in digests],
        "hashAlgorithmOID": SHA256,
    }

    # the SAD of an official's credential needs every factor and the hashes
    missing = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={**auth, "authData": [{"id": "PIN", "value": PIN}]}
    )
    assert "one-time code" in assert_csc_error(missing, 400)
    no_hashes = {"credentialID": serial, "numSignatures": 1, "authData": [{"id": "PIN", "value": PIN}]}
    assert "hashes" in assert_csc_error(api.post("/csc/v2/credentials/authorize", headers=token, json=no_hashes), 400)
    wrong_pin = [{"id": "PIN", "value": "000000"}, {"id": "OTP", "value": totp(secret, int(time.time()) // 30)}]
    refused = api.post("/csc/v2/credentials/authorize", headers=token, json={**auth, "authData": wrong_pin})
    assert "wrong" in assert_csc_error(refused, 403, "access_denied")

    step = int(time.time()) // 30 + 1  # the next code: the one above was used up
    factors = [{"id": "PIN", "value": PIN}, {"id": "OTP", "value": totp(secret, step)}]
    granted = api.post("/csc/v2/credentials/authorize", headers=token, json={**auth, "authData": factors})
    if granted.status_code != 200:  # the next step's code is accepted within the drift window; else this one
        factors[1]["value"] = totp(secret, step - 1)
        granted = api.post("/csc/v2/credentials/authorize", headers=token, json={**auth, "authData": factors})
    assert granted.status_code == 200, granted.text
    sad = granted.json()["SAD"]
    assert 0 < granted.json()["expiresIn"] <= 300

    sign = {"credentialID": serial, "SAD": sad, "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256}
    other = api.post(
        "/csc/v2/signatures/signHash", headers=token, json={**sign, "hashes": [_b64(d) for d in digests[:2]]}
    )
    assert "not exactly" in assert_csc_error(other, 400)
    foreign = csc_token(api, world, "signer2")
    stolen = api.post(
        "/csc/v2/signatures/signHash", headers=foreign, json={**sign, "hashes": [_b64(d) for d in digests]}
    )
    assert "another credential or calling system" in assert_csc_error(stolen, 400)
    rsa_on_ec = api.post(
        "/csc/v2/signatures/signHash",
        headers=token,
        json={**sign, "signAlgo": SHA256_RSA, "hashes": [_b64(d) for d in digests]},
    )
    assert "EC key" in assert_csc_error(rsa_on_ec, 400)

    signed = api.post("/csc/v2/signatures/signHash", headers=token, json={**sign, "hashes": [_b64(d) for d in digests]})
    assert signed.status_code == 200, signed.text
    public_key = certificate(api, token, serial).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    for digest, value in zip(digests, signed.json()["signatures"], strict=True):
        public_key.verify(base64.b64decode(value), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        pkeyutl_verifies(public_key, digest, base64.b64decode(value), tmp_path)
    replay = api.post("/csc/v2/signatures/signHash", headers=token, json={**sign, "hashes": [_b64(d) for d in digests]})
    assert "already been used" in assert_csc_error(replay, 400)

    events = signature_events(world, serial)
    assert [event["outcome"] for event in events] == ["failure", "failure", "failure", "success", "failure"]
    assert events[3]["details"]["digests"] == [d.hex() for d in digests]


def test_a_seal_is_authorized_without_factors_and_signs_with_pss_and_pkcs1(
    world: World, api: TestClient, tmp_path: Path
) -> None:
    seal = enrol(api, world, "organization", "rsa2048")
    token = csc_token(api, world)
    public_key = certificate(api, token, seal).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    digests = [hashlib.sha256(f"con dấu {i}".encode()).digest() for i in range(2)]
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    pss_params = algos.RSASSAPSSParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32,
        }
    ).dump()
    for sign_algo, params, scheme, openssl_options in (
        (RSA_PSS, _b64(pss_params), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
         ("-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32")),
        (RSA, None, padding.PKCS1v15(), ("-pkeyopt", "digest:sha256")),
    ):  # fmt: skip
        # v1 field names, as pyHanko's CSCSigner and MySign-style apps send them
        sad = api.post("/csc/v1/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 2})
        assert sad.status_code == 200, sad.text
        body = {
            "credentialID": seal,
            "SAD": sad.json()["SAD"],
            "hash": [_b64(d) for d in digests],
            "hashAlgo": SHA256,
            "signAlgo": sign_algo,
        }
        if params:
            body["signAlgoParams"] = params
        signed = api.post("/csc/v1/signatures/signHash", headers=token, json=body)
        assert signed.status_code == 200, signed.text
        for digest, value in zip(digests, signed.json()["signatures"], strict=True):
            public_key.verify(base64.b64decode(value), digest, scheme, Prehashed(hashes.SHA256()))
            pkeyutl_verifies(public_key, digest, base64.b64decode(value), tmp_path, *openssl_options)
        assert "already been used" in assert_csc_error(
            api.post("/csc/v1/signatures/signHash", headers=token, json=body), 400
        )

    sad = api.post(
        "/csc/v1/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 1}
    ).json()["SAD"]
    too_many = {
        "credentialID": seal,
        "SAD": sad,
        "hash": [_b64(d) for d in digests],
        "hashAlgo": SHA256,
        "signAlgo": RSA,
    }
    assert "allows 1 signature" in assert_csc_error(
        api.post("/csc/v1/signatures/signHash", headers=token, json=too_many), 400
    )
    bad_pss = algos.RSASSAPSSParams({"hash_algorithm": {"algorithm": "sha256"}, "salt_length": 20}).dump()
    weird = {**too_many, "hash": [_b64(digests[0])], "signAlgo": RSA_PSS, "signAlgoParams": _b64(bad_pss)}
    assert "signAlgoParams" in assert_csc_error(api.post("/csc/v1/signatures/signHash", headers=token, json=weird), 400)
    expired = api.post(
        "/csc/v1/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 1}
    ).json()["SAD"]
    with world.services.database.unit_of_work() as ports:
        ports.session.execute(
            update(SignatureActivationRow)
            .where(SignatureActivationRow.token_sha256 == hashlib.sha256(expired.encode()).hexdigest())
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    late = {**too_many, "SAD": expired, "hash": [_b64(digests[0])]}
    assert "expired" in assert_csc_error(api.post("/csc/v1/signatures/signHash", headers=token, json=late), 400)
    otp = api.post("/csc/v1/credentials/sendOTP", headers=token, json={"credentialID": seal})
    assert "authenticator" in assert_csc_error(otp, 400)
    outcomes = [event["outcome"] for event in signature_events(world, seal)]
    # replays, too many hashes and the expired SAD; malformed requests (bad signAlgoParams) are
    # answered before any credential is touched, as schema errors are
    assert outcomes == ["success", "failure", "success", "failure", "failure", "failure"], outcomes


def test_timestamp_and_malformed_requests(world: World, api: TestClient) -> None:
    token = csc_token(api, world)
    digest = hashlib.sha256(b"van ban").digest()
    stamped = api.post(
        "/csc/v2/signatures/timestamp",
        headers=token,
        json={"hash": _b64(digest), "hashAlgorithmOID": SHA256, "nonce": "0badc0de"},
    )
    assert stamped.status_code == 200, stamped.text
    info = tsp.ContentInfo.load(base64.b64decode(stamped.json()["timestamp"]))["content"]["encap_content_info"][
        "content"
    ].parsed
    assert info["message_imprint"]["hashed_message"].native == digest and info["nonce"].native == 0x0BADC0DE
    too_long = {"hash": _b64(digest), "hashAlgorithmOID": SHA256, "nonce": "ab" * 33}
    assert "nonce" in assert_csc_error(api.post("/csc/v2/signatures/timestamp", headers=token, json=too_long), 400)
    for body in (
        {"hash": "***", "hashAlgo": SHA256},
        {"hash": _b64(digest), "hashAlgo": "1.2.3"},
        {"hash": _b64(digest[:5]), "hashAlgo": SHA256},
    ):
        assert_csc_error(api.post("/csc/v1/signatures/timestamp", headers=token, json=body), 400)
    garbage = api.post(
        "/csc/v2/signatures/signHash", headers={**token, "Content-Type": "application/json"}, content=b"{"
    )
    assert_csc_error(garbage, 400)
    assert_csc_error(api.get("/csc/v2/info"), 405)
    assert_csc_error(api.post("/csc/v2/nothing-here", json={}), 404)


def _cms_verifies(signature: bytes, content: bytes, chain_pem: bytes, tmp_path: Path) -> None:
    (tmp_path / "sig.p7s").write_bytes(signature)
    (tmp_path / "doc.bin").write_bytes(content)
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    result = subprocess.run(
        [require_tool("openssl"), "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
         "-content", str(tmp_path / "doc.bin"), "-CAfile", str(tmp_path / "chain.pem"), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stdout + result.stderr


def test_sign_doc_pades_at_every_level_and_cades_of_documents_and_digests(
    world: World, api: TestClient, tmp_path: Path
) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    from helpers.pdf import chain_context

    seal = enrol(api, world, "organization", "rsa2048")
    token = csc_token(api, world)
    chain_pem = api.get(f"/api/v1/certificates/{seal}/chain?format=pem", headers=world["ra-officer"].headers).content
    context = chain_context(x509.load_pem_x509_certificates(chain_pem))
    levels = ["Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"]
    pdfs = [blank_pdf(pages=n + 1) for n in range(len(levels))]
    content, digests = (
        b"Quyet dinh so 12",
        [hashlib.sha256(b"to trinh 1").digest(), hashlib.sha256(b"to trinh 2").digest()],
    )
    sad = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 7}
    ).json()["SAD"]
    body = {
        "credentialID": seal,
        "SAD": sad,
        "documents": [
            *({"document": _b64(pdf), "signature_format": "P", "conformance_level": level, "signAlgo": SHA256_RSA}
              for pdf, level in zip(pdfs, levels, strict=True)),
            {"document": _b64(content), "signature_format": "C", "conformance_level": "Ades-B-T", "signAlgo": RSA_PSS},
        ],
        "documentDigests": [{"hashes": [_b64(d) for d in digests], "hashAlgorithmOID": SHA256, "signature_format": "C", "signAlgo": RSA}],
    }  # fmt: skip
    signed = api.post("/csc/v2/signatures/signDoc", headers=token, json=body)
    assert signed.status_code == 200, signed.text
    answer = signed.json()
    assert len(answer["DocumentWithSignature"]) == 4 and len(answer["SignatureObject"]) == 3
    for level, value in zip(levels, answer["DocumentWithSignature"], strict=True):
        reader = PdfFileReader(BytesIO(base64.b64decode(value)))
        (embedded,) = reader.embedded_regular_signatures
        status = validate_pdf_signature(embedded, context)
        assert status.intact and status.valid, (level, status.pretty_print_details())
        assert ("/DSS" in reader.root) == (level in ("Ades-B-LT", "Ades-B-LTA")), level
        assert embedded.sig_object.get("/SubFilter") == "/ETSI.CAdES.detached", level
    lta = PdfFileReader(BytesIO(base64.b64decode(answer["DocumentWithSignature"][3])))
    assert len(lta.embedded_regular_signatures) == 1 and len(lta.embedded_timestamp_signatures) == 1
    cades, *of_digests = (base64.b64decode(value) for value in answer["SignatureObject"])
    _cms_verifies(cades, content, chain_pem, tmp_path)
    for value, text in zip(of_digests, (b"to trinh 1", b"to trinh 2"), strict=True):
        _cms_verifies(value, text, chain_pem, tmp_path)
    said = pdfsig(
        base64.b64decode(answer["DocumentWithSignature"][1]),
        x509.load_pem_x509_certificates(chain_pem)[-1].public_bytes(serialization.Encoding.DER),
        tmp_path,
    )
    assert "Signature is Valid." in said, said
    assert "already been used" in assert_csc_error(
        api.post("/csc/v2/signatures/signDoc", headers=token, json=body), 400
    )
    bad = {
        **body,
        "SAD": "x",
        "documents": [{**body["documents"][0], "conformance_level": "Ades-Q"}],
        "documentDigests": [],
    }
    assert "conformance_level" in assert_csc_error(api.post("/csc/v2/signatures/signDoc", headers=token, json=bad), 400)


def test_sign_doc_with_an_official_signs_exactly_the_authorized_documents(world: World, api: TestClient) -> None:
    serial, _ = official(api, world)
    token = csc_token(api, world)
    first, second, third = blank_pdf(), blank_pdf(pages=2), blank_pdf(pages=3)
    hashes = [_b64(hashlib.sha256(pdf).digest()) for pdf in (first, second)]
    auth = {"credentialID": serial, "numSignatures": 2, "hashes": hashes, "hashAlgorithmOID": SHA256,
            "authData": [{"id": "PIN", "value": PIN}]}  # fmt: skip
    document = {"signature_format": "P", "conformance_level": "Ades-B-T", "signAlgo": ECDSA_SHA256}
    sad = api.post("/csc/v2/credentials/authorize", headers=token, json=auth).json()["SAD"]
    other = {
        "credentialID": serial,
        "SAD": sad,
        "documents": [{**document, "document": _b64(pdf)} for pdf in (first, third)],
    }
    assert "not exactly" in assert_csc_error(api.post("/csc/v2/signatures/signDoc", headers=token, json=other), 400)
    body = {
        "credentialID": serial,
        "SAD": sad,
        "documents": [{**document, "document": _b64(pdf)} for pdf in (second, first)],
    }
    signed = api.post("/csc/v2/signatures/signDoc", headers=token, json=body)
    assert signed.status_code == 200, signed.text
    assert [
        base64.b64decode(value).startswith(pdf)
        for value, pdf in zip(signed.json()["DocumentWithSignature"], (second, first), strict=True)
    ] == [True, True]
    assert "already been used" in assert_csc_error(
        api.post("/csc/v2/signatures/signDoc", headers=token, json=body), 400
    )
    actions = [(e["action"], e["outcome"]) for e in audit_events(world, serial) if e["action"].startswith("signature.")]
    assert actions == [
        ("signature.activate", "success"),  # the SAD, for exactly the two documents
        ("signature.create", "failure"),  # another document: refused, the SAD still unused
        ("signature.activate.split", "success"),  # used up, one part per document
        ("signature.create", "success"),
        ("signature.create", "success"),
        ("signature.create", "failure"),  # the replay
    ], actions


def audit_events(world: World, serial: str) -> list[dict[str, Any]]:
    with world.services.database.read_only() as ports:
        return list(ports.audit.search(AuditQuery(object_id=serial, limit=1000)))


def test_extend_transaction_replaces_a_seals_sad_and_never_an_officials(world: World, api: TestClient) -> None:
    seal = enrol(api, world, "organization")
    token = csc_token(api, world)
    sad = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 1}
    ).json()["SAD"]
    extended = api.post("/csc/v1/credentials/extendTransaction", headers=token, json={"credentialID": seal, "SAD": sad})
    assert extended.status_code == 200, extended.text
    fresh = extended.json()["SAD"]
    assert fresh != sad and 0 < extended.json()["expiresIn"] <= 300
    digest = _b64(hashlib.sha256(b"gia han").digest())
    sign = {"credentialID": seal, "hashes": [digest], "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256}
    assert "already been used" in assert_csc_error(
        api.post("/csc/v2/signatures/signHash", headers=token, json={**sign, "SAD": sad}), 400
    )
    assert api.post("/csc/v2/signatures/signHash", headers=token, json={**sign, "SAD": fresh}).status_code == 200
    again = api.post("/csc/v2/credentials/extendTransaction", headers=token, json={"credentialID": seal, "SAD": fresh})
    assert "used or has expired" in assert_csc_error(again, 400)
    foreign = csc_token(api, world, "signer2")
    other = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 1}
    ).json()["SAD"]
    assert "not one this client holds" in assert_csc_error(
        api.post("/csc/v2/credentials/extendTransaction", headers=foreign, json={"credentialID": seal, "SAD": other}),
        400,
    )

    serial, _ = official(api, world)
    auth = {
        "credentialID": serial,
        "numSignatures": 1,
        "hashes": [digest],
        "hashAlgorithmOID": SHA256,
        "authData": [{"id": "PIN", "value": PIN}],
    }
    sad = api.post("/csc/v2/credentials/authorize", headers=token, json=auth).json()["SAD"]
    refused = api.post(
        "/csc/v2/credentials/extendTransaction", headers=token, json={"credentialID": serial, "SAD": sad}
    )
    assert "authorizes the signing again" in assert_csc_error(refused, 400)
    stale = api.post("/csc/v2/credentials/authorize", headers=token, json=auth).json()["SAD"]
    with world.services.database.unit_of_work() as ports:
        ports.session.execute(
            update(SignatureActivationRow)
            .where(SignatureActivationRow.token_sha256 == hashlib.sha256(stale.encode()).hexdigest())
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    late = {**sign, "credentialID": serial, "SAD": stale}
    assert "expired" in assert_csc_error(api.post("/csc/v2/signatures/signHash", headers=token, json=late), 400)
    signed = api.post("/csc/v2/signatures/signHash", headers=token, json={**sign, "credentialID": serial, "SAD": sad})
    assert signed.status_code == 200, signed.text
    assert [event["outcome"] for event in signature_events(world, serial)] == ["failure", "success"]


def test_sign_doc_draws_decree30_stamps_with_the_signing_apis_parameters(world: World, api: TestClient) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    from signing.decree30_pages import NAME, decision_pdf

    seal = enrol(api, world, "organization")
    token = csc_token(api, world)
    sad = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 2}
    ).json()["SAD"]
    copy = {"document": _b64(decision_pdf()), "signature_format": "P", "signAlgo": ECDSA_SHA256, "stamp": "copy",
            "copy_form": "SAO Y", "copy_agency": "Văn phòng Bộ Tư pháp", "field_name": "BanSao"}  # fmt: skip
    cades_with_stamp = {"document": _b64(b"x"), "signature_format": "C", "signAlgo": ECDSA_SHA256, "stamp": "copy"}
    refused = api.post(
        "/csc/v2/signatures/signDoc",
        headers=token,
        json={"credentialID": seal, "SAD": sad, "documents": [copy, cades_with_stamp]},
    )
    assert "PDF" in assert_csc_error(refused, 400)
    signed = api.post(
        "/csc/v2/signatures/signDoc", headers=token, json={"credentialID": seal, "SAD": sad, "documents": [copy]}
    )
    assert signed.status_code == 200, signed.text
    reader = PdfFileReader(BytesIO(base64.b64decode(signed.json()["DocumentWithSignature"][0])))
    (embedded,) = reader.embedded_signatures
    assert embedded.field_name == "BanSao"
    stamp_text = embedded.sig_field["/AP"]["/N"]
    assert stamp_text is not None  # a visible widget: the copy stamp
    assert [float(v) for v in embedded.sig_field["/Rect"]][3] > 780  # top right of page 1

    # the person stamp needs an official's credential and the page's text: problems name them
    sad = api.post(
        "/csc/v2/credentials/authorize", headers=token, json={"credentialID": seal, "numSignatures": 1}
    ).json()["SAD"]
    person = {
        **copy,
        "stamp": "person",
        "title_text": "PHÓ CHỦ TỊCH",
        "name_text": NAME,
        "copy_form": None,
        "copy_agency": None,
    }
    wrong = api.post(
        "/csc/v2/signatures/signDoc", headers=token, json={"credentialID": seal, "SAD": sad, "documents": [person]}
    )
    assert "individual" in assert_csc_error(wrong, 400)
