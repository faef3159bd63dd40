"""Authentication: bearer tokens (disabled clients, rotation through the CLI, malformed tokens),
the per-source failure limit (429 with Retry-After), and client certificates passed by a trusted
TLS-terminating proxy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from helpers.world import AGENCY_A, AGENCY_B, World, assert_problem, enrol_body

GOVSIGN = Path(sys.executable).parent / "govsign"


def cli_env(world: World) -> dict[str, str]:
    """The environment of a `govsign` command on the world's token and database."""
    settings = world.deployment.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    assert settings.hsm_pin is not None
    env.update(
        GOVSIGN_DATA_DIR=str(settings.data_dir),
        GOVSIGN_DATABASE_URL=str(settings.database_url),
        GOVSIGN_HSM_PIN=settings.hsm_pin.get_secret_value(),
        GOVSIGN_PUBLIC_BASE_URL=settings.public_base_url,
        LC_ALL="C.UTF-8",
    )
    return env


def assert_unauthenticated(response: object) -> None:
    assert_problem(response, 401)  # type: ignore[arg-type]
    assert response.headers["www-authenticate"] == 'Bearer realm="govsign"'  # type: ignore[attr-defined]


def test_disabled_client_and_rotated_token_are_refused(world: World, direct_api: TestClient) -> None:
    caller = world.add_caller("rotated", "auditor", AGENCY_A)
    assert direct_api.get("/api/v1/agencies", headers=caller.headers).status_code == 200

    result = subprocess.run(
        [str(GOVSIGN), "client", "rotate", caller.name, "--json"],
        env=cli_env(world),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    new_token = json.loads(result.stdout)["token"]
    assert new_token != caller.token
    assert_unauthenticated(direct_api.get("/api/v1/agencies", headers=caller.headers))
    assert direct_api.get("/api/v1/agencies", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200

    world.services.directory.disable_client(caller.name, actor="test:platform")
    assert_unauthenticated(direct_api.get("/api/v1/agencies", headers={"Authorization": f"Bearer {new_token}"}))
    # The secret is stored only as a keyed hash.
    listed = {c.name: c for c in world.services.directory.list_clients()}[caller.name]
    assert new_token not in listed.secret_hash and listed.secret_hash != new_token


def test_malformed_tokens_are_refused(world: World, direct_api: TestClient) -> None:
    token = world["auditor"].token
    prefix, client_id, secret = token.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    headers_list = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
        {"Authorization": f"Token {token}"},
        {"Authorization": token},
        {"Authorization": "Bearer gsk_"},
        {"Authorization": f"Bearer gsk_{'0' * 16}_{'A' * 43}"},  # well formed, unknown client
        {"Authorization": f"Bearer {prefix}_{client_id}_{flipped}"},  # known client, wrong secret
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Bearer {token.upper()}"},
        {"Authorization": f"Bearer {token} {token}"},
        {"Authorization": "Bearer " + "A" * 8000},
        {"Authorization": "Bearer gsk_ZZZZZZZZZZZZZZZZ_" + "é" * 43},
    ]
    for headers in headers_list:
        encoded = {k: v.encode("utf-8") for k, v in headers.items()}
        assert_unauthenticated(direct_api.get("/api/v1/agencies", headers=encoded))
    # The scheme is case-insensitive (RFC 9110) and surrounding spaces are tolerated.
    assert direct_api.get("/api/v1/agencies", headers={"Authorization": f"bearer  {token} "}).status_code == 200


def test_failed_authentications_are_rate_limited_per_source(world: World) -> None:
    auditor = world["auditor"]
    with world.app(client=("192.0.2.10", 40000), auth_failure_limit=10) as attacker:
        assert attacker.app.state.settings.auth_failure_limit == 10
        for _ in range(10):
            assert_unauthenticated(attacker.get("/api/v1/agencies", headers={"Authorization": "Bearer nope"}))
        eleventh = attacker.get("/api/v1/agencies", headers={"Authorization": "Bearer nope"})
        body = assert_problem(eleventh, 429)
        assert body["type"].endswith("/rate-limited"), body
        assert 1 <= int(eleventh.headers["retry-after"]) <= 61, eleventh.headers
        # The source is blocked, even with a valid token...
        assert attacker.get("/api/v1/agencies", headers=auditor.headers).status_code == 429
        # ...but another source of the same app is not.
        other = TestClient(attacker.app, raise_server_exceptions=False, client=("192.0.2.11", 40000))
        assert other.get("/api/v1/agencies", headers=auditor.headers).status_code == 200


def _self_signed(common_name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_client_certificate_from_a_trusted_proxy_maps_to_its_client(world: World) -> None:
    certificate = _self_signed("dms.btc.gov.vn")
    der = certificate.public_bytes(serialization.Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    colon_upper = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    caller = world.add_caller("mtls", "ra-officer", AGENCY_B, certificate_fingerprint=colon_upper)
    header = quote(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    unknown = quote(_self_signed("someone-else").public_bytes(serialization.Encoding.PEM).decode("ascii"))

    with world.app(client=("198.51.100.7", 443), trusted_proxies="198.51.100.7, 198.51.100.8") as proxy:
        name = proxy.app.state.settings.client_certificate_header
        response = proxy.post("/api/v1/certificates", headers={name: header}, json=enrol_body(None))
        assert response.status_code == 201, response.text
        # The certificate authenticated the client registered with its fingerprint: its agency...
        assert response.json()["agency_id"] == AGENCY_B
        # ...and its id in the audit event of the request.
        events = proxy.get(
            f"/api/v1/audit?client_id={caller.client_id}&action=certificate.issue", headers=world["auditor"].headers
        ).json()["items"]
        assert [e["request_id"] for e in events] == [response.headers["x-request-id"]]

        for bad in ("garbage", quote("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), unknown):
            assert_unauthenticated(proxy.get("/api/v1/agencies", headers={name: bad}))

        # The same header from an address that is not a trusted proxy is ignored.
        direct = TestClient(proxy.app, raise_server_exceptions=False, client=("203.0.113.9", 50000))
        assert_unauthenticated(direct.get("/api/v1/agencies", headers={name: header}))
        assert_unauthenticated(direct.post("/api/v1/certificates", headers={name: header}, json=enrol_body(None)))

        # A disabled client's certificate no longer authenticates.
        world.services.directory.disable_client(caller.name, actor="test:platform")
        assert_unauthenticated(proxy.get("/api/v1/agencies", headers={name: header}))
