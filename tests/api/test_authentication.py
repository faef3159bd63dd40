"""Authentication: bearer tokens (disabled clients, rotation through the CLI, malformed tokens),
the per-source failure limit (429 with Retry-After), and client certificates passed by a trusted
TLS-terminating proxy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from govsign.audit.events import AuditQuery
from helpers.deployment import Deployment
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


def _a_fresh_minute() -> None:
    """Wait when the minute is about to turn (the limiter counts per minute)."""
    while dt.datetime.now(dt.UTC).second >= 55:
        time.sleep(0.5)


def _address() -> str:
    """A documentation address (RFC 3849) of this test only: the counts live in the shared database."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def test_failed_authentications_are_rate_limited_per_source_without_refusing_valid_tokens(world: World) -> None:
    auditor = world["auditor"]
    source = _address()
    _a_fresh_minute()
    with world.app(client=(source, 40000), auth_failure_limit=10) as attacker:
        assert attacker.app.state.settings.auth_failure_limit == 10
        for _ in range(10):
            assert_unauthenticated(attacker.get("/api/v1/agencies", headers={"Authorization": "Bearer nope"}))
        eleventh = attacker.get("/api/v1/agencies", headers={"Authorization": "Bearer nope"})
        body = assert_problem(eleventh, 429)
        assert body["type"].endswith("/rate-limited"), body
        assert 1 <= int(eleventh.headers["retry-after"]) <= 61, eleventh.headers
        # A valid token from the same address still passes (an address may be shared: NAT, proxy)...
        assert attacker.get("/api/v1/agencies", headers=auditor.headers).status_code == 200
        # ...and another source of the same app is not limited.
        other = TestClient(attacker.app, raise_server_exceptions=False, client=(_address(), 40000))
        assert_unauthenticated(other.get("/api/v1/agencies", headers={"Authorization": "Bearer nope"}))


def test_the_failure_limit_is_shared_by_every_worker(world: World) -> None:
    """Two apps over one database are two workers (or nodes): 20 bad tokens, limit 10, pass 10."""
    source = _address()
    _a_fresh_minute()
    with (
        world.app(client=(source, 40000), auth_failure_limit=10) as first,
        world.app(client=(source, 40001), auth_failure_limit=10) as second,
    ):
        statuses = [
            (first if i % 2 else second).get("/api/v1/agencies", headers={"Authorization": "Bearer nope"}).status_code
            for i in range(20)
        ]
    assert statuses == [401] * 10 + [429] * 10, statuses


def test_failures_are_counted_per_client_the_token_names(world: World) -> None:
    signer, auditor = world["signer"], world["auditor"]
    source = _address()
    _a_fresh_minute()
    with world.app(client=(source, 40000), auth_failure_limit=3) as app:
        wrong_signer = {"Authorization": f"Bearer {signer.token[:-4]}AAAA"}
        wrong_auditor = {"Authorization": f"Bearer {auditor.token[:-4]}AAAA"}
        assert [app.get("/api/v1/agencies", headers=wrong_signer).status_code for _ in range(4)] == [401] * 3 + [429]
        # the same address guessing another client's token is counted apart
        assert app.get("/api/v1/agencies", headers=wrong_auditor).status_code == 401
        assert app.get("/api/v1/agencies", headers=signer.headers).status_code == 403  # known, not limited


def test_failed_authentications_are_audited_once_per_address_per_minute_with_a_count(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment()
    authentication, clock = deployment.services.authentication, deployment.clock
    clock.advance(clock.now().replace(second=2, microsecond=0) + dt.timedelta(minutes=1) - clock.now())
    limit = deployment.settings.auth_failure_limit
    waits = [authentication.record_failure("192.0.2.77", "someclient") for _ in range(25)]  # a flood...
    assert waits[:limit] == [0] * limit and all(waits[limit:]), waits
    # past the limit the process counts in memory and adds to the database once a second
    assert authentication.flush_failures() == 25 - limit - 1
    assert authentication.flush_failures() == 0
    authentication.record_failure("192.0.2.77", None)
    for _ in range(3):  # ...and a few from another
        authentication.record_failure("192.0.2.78", None)
    assert authentication.audit_failures() == 0, "the minute is not over yet"
    clock.advance(dt.timedelta(seconds=60))
    authentication.record_failure("192.0.2.77", None)  # the next minute, audited after it
    assert authentication.audit_failures() == 0, "a few seconds' grace for the last flushes"
    clock.advance(dt.timedelta(seconds=4))
    assert authentication.audit_failures() == 2
    assert authentication.audit_failures() == 0, "each minute is audited once"
    events = deployment.services.audit.search(AuditQuery(action="authentication.failure"))
    by_address = {event["object_id"]: event for event in events}
    assert sorted(by_address) == ["192.0.2.77", "192.0.2.78"], events
    flood = by_address["192.0.2.77"]
    assert flood["outcome"] == "denied"
    assert flood["details"]["failures"] == 26
    assert flood["details"]["client_ids"] == ["someclient"]
    assert by_address["192.0.2.78"]["details"]["failures"] == 3
    clock.advance(dt.timedelta(seconds=60))
    assert authentication.audit_failures() == 1
    assert deployment.services.audit_checkpoints.verify().intact


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
