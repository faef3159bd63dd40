"""Usability fixes (issue 16). A signing refused on the request's own parameters after the official's activation was checked
(a field that is already signed) leaves the activation usable: the official does not have to
type a new code for the corrected request. The restoration is audited."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from helpers.pdf import blank_pdf
from helpers.world import AGENCY_A1, World, assert_problem, enrol, post_pdf, signature_events

PIN = "640213"


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
        yield client


def test_a_request_refused_on_its_parameters_keeps_the_activation(world: World, api: TestClient) -> None:
    ra, signer = world["ra-officer"].headers, world["signer"].headers
    official = enrol(api, world["ra-officer"], AGENCY_A1, profile="individual")
    assert api.put(f"/api/v1/credentials/{official}/factors/pin", headers=ra, json={"pin": PIN}).status_code == 204
    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    sealed = post_pdf(api, signer, blank_pdf(), credential=seal, level="B-B", field_name="DaKy")
    assert sealed.status_code == 200, sealed.text
    pdf = sealed.content
    digest = base64.b64encode(hashlib.sha256(pdf).digest()).decode()
    grant = api.post(
        f"/api/v1/credentials/{official}/activations", headers=signer, json={"hashes": [digest], "pin": PIN}
    )
    token = grant.json()["activation"]

    refused = post_pdf(api, signer, pdf, credential=official, level="B-B", field_name="DaKy", activation=token)
    assert_problem(refused, 422)
    corrected = post_pdf(api, signer, pdf, credential=official, level="B-B", field_name="LanhDao", activation=token)
    assert corrected.status_code == 200, corrected.text
    replay = post_pdf(api, signer, pdf, credential=official, level="B-B", field_name="Khac", activation=token)
    assert "already been used" in assert_problem(replay, 409)["detail"]
    assert [e["outcome"] for e in signature_events(world, official)] == ["failure", "success", "failure"]
    restored = signature_events(world, official, action="signature.activate.restore")
    assert (
        len(restored) == 1 and restored[0]["details"]["activation_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    )


def test_client_names_take_vietnamese_letters(world: World) -> None:
    import secrets

    from govsign.errors import InvalidInputError

    name = f"Hệ thống QLVB Sở Tư pháp {secrets.token_hex(2)}"
    created = world.services.directory.add_client(name, role="signer", agency_id=AGENCY_A1, actor="test:names")
    assert created is not None
    for bad in (" leading", "trailing ", "_under", "semi;colon", ""):
        with pytest.raises(InvalidInputError):
            world.services.directory.add_client(bad, role="signer", agency_id=AGENCY_A1, actor="test:names")


def test_a_signer_discovers_the_credentials_it_may_sign_with(world: World, api: TestClient) -> None:
    ra, signer = world["ra-officer"].headers, world["signer"].headers
    official = enrol(api, world["ra-officer"], AGENCY_A1, profile="individual")
    assert api.put(f"/api/v1/credentials/{official}/factors/pin", headers=ra, json={"pin": PIN}).status_code == 204
    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    listed = api.get("/api/v1/credentials", headers=signer)
    assert listed.status_code == 200, listed.text
    found = {item["serial"]: item for item in listed.json()["items"]}
    assert {official, seal} <= set(found)
    mine = found[official]
    assert mine["activation_required"] and mine["factors"] == ["pin"] and mine["profile"] == "individual"
    assert mine["signature_algorithms"] == ["ecdsa"] and mine["key_algorithm"] == "ec-p256"
    assert mine["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----") and len(mine["chain_pem"]) == 2
    assert not found[seal]["activation_required"] and found[seal]["factors"] == []
    one = api.get(f"/api/v1/credentials/{seal}", headers=signer)
    assert one.status_code == 200 and one.json() == found[seal]
    assert official not in {
        i["serial"] for i in api.get("/api/v1/credentials", headers=world["signer@B"].headers).json()["items"]
    }
    assert_problem(api.get(f"/api/v1/credentials/{official}", headers=world["signer@B"].headers), 403)
    assert_problem(api.get("/api/v1/credentials/0a1b2c3d4e", headers=signer), 404)


def test_every_signing_answer_names_the_certificate_and_the_signature_algorithm(world: World, api: TestClient) -> None:
    from helpers.world import post_cms

    signer = world["signer"].headers
    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")  # EC P-256: ecdsa
    pdf = post_pdf(api, signer, blank_pdf(), credential=seal, level="B-B")
    assert (pdf.headers["govsign-credential"], pdf.headers["govsign-signature-algorithm"]) == (seal, "ecdsa")
    cms = post_cms(api, signer, b"noi dung", credential=seal, level="B-B")
    assert (cms.headers["govsign-credential"], cms.headers["govsign-signature-algorithm"]) == (seal, "ecdsa")
    body = {
        "credential": seal,
        "digest_algorithm": "sha256",
        "digests": [base64.b64encode(bytes(32)).decode()],
        "output": "raw",
    }
    digests = api.post("/api/v1/signatures/digests", headers=signer, json=body)
    assert digests.status_code == 200, digests.text
    assert digests.json()["credential"] == seal and digests.json()["signature_algorithm"] == "ecdsa"
    as_json = api.post(
        "/api/v1/signatures/cms", headers=signer,
        json={"credential": seal, "level": "B-B", "document": base64.b64encode(b"x").decode()},
    )  # fmt: skip
    assert as_json.status_code == 200 and as_json.json()["signature_algorithm"] == "ecdsa", as_json.text
