"""Sole control of officials' keys over the REST API: factor enrolment (TOTP seed shown once and
held by the HSM, PIN as a slow hash), signature activations bound to exactly the hashes being
signed, single use, expiry, replay, wrong factors and lockout, agency scoping; every refusal is
audited, nothing is signed, and no factor appears in the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import update

from govsign.audit.events import AuditQuery
from govsign.storage.models import SignatureActivationRow
from helpers.factors import totp
from helpers.pdf import blank_pdf
from helpers.world import AGENCY_A1, World, assert_problem, enrol, post_pdf, signature_events

PIN = "482915"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
        yield client


def official_with_pin(world: World, api: TestClient) -> str:
    serial = enrol(api, world["ra-officer"], AGENCY_A1, profile="individual")
    response = api.put(
        f"/api/v1/credentials/{serial}/factors/pin", headers=world["ra-officer"].headers, json={"pin": PIN}
    )
    assert response.status_code == 204, response.text
    return serial


def activate(
    api: TestClient, world: World, serial: str, documents: list[bytes], caller: str = "signer", **factors: Any
) -> Any:
    body: dict[str, Any] = {"hashes": [_b64(hashlib.sha256(d).digest()) for d in documents], **factors}
    if len(documents) > 1 and "count" not in body:
        body["count"] = len(documents)
    return api.post(f"/api/v1/credentials/{serial}/activations", headers=world[caller].headers, json=body)


def audit_text(world: World, serial: str) -> str:
    with world.services.database.read_only() as ports:
        events = ports.audit.search(AuditQuery(object_id=serial, limit=1000))
    return json.dumps(events, default=str)


def test_official_signs_a_pdf_with_a_pin_activation_once(world: World, api: TestClient) -> None:
    serial = official_with_pin(world, api)
    pdf = blank_pdf()
    response = post_pdf(api, world["signer"].headers, pdf, credential=serial, level="B-T")
    assert "signature activation" in assert_problem(response, 422)["detail"]

    response = activate(api, world, serial, [pdf], pin=PIN)
    assert response.status_code == 201, response.text
    grant = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert grant["count"] == 1 and grant["hash_algorithm"] == "sha256"
    expires = dt.datetime.fromisoformat(grant["expires_at"])
    assert dt.timedelta(0) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=5)

    response = post_pdf(
        api, world["signer"].headers, pdf, credential=serial, level="B-T", activation=grant["activation"]
    )
    assert response.status_code == 200, response.text
    assert len(PdfFileReader(BytesIO(response.content)).embedded_signatures) == 1
    replay = post_pdf(api, world["signer"].headers, pdf, credential=serial, activation=grant["activation"])
    assert "already been used" in assert_problem(replay, 409)["detail"]

    events = signature_events(world, serial)
    assert [e["outcome"] for e in events] == ["failure", "success", "failure"]
    assert events[1]["details"]["activation_sha256"] == hashlib.sha256(grant["activation"].encode()).hexdigest()
    text = audit_text(world, serial)
    assert PIN not in text and grant["activation"] not in text


def test_wrong_hash_expired_foreign_and_unknown_activations_are_refused(world: World, api: TestClient) -> None:
    serial = official_with_pin(world, api)
    pdf, other = blank_pdf(), blank_pdf(pages=2)
    token = activate(api, world, serial, [pdf], pin=PIN).json()["activation"]
    signer = world["signer"].headers

    response = post_pdf(api, signer, other, credential=serial, activation=token)
    assert "not exactly those" in assert_problem(response, 422)["detail"]
    response = post_pdf(api, world["signer2"].headers, pdf, credential=serial, activation=token)
    assert "another credential or calling system" in assert_problem(response, 422)["detail"]
    second_official = official_with_pin(world, api)
    response = post_pdf(api, signer, pdf, credential=second_official, activation=token)
    assert_problem(response, 422)
    response = post_pdf(api, signer, pdf, credential=serial, activation="gsa_" + "A" * 43)
    assert "not known" in assert_problem(response, 422)["detail"]
    response = post_pdf(api, world["signer@B"].headers, pdf, credential=serial, activation=token)
    assert_problem(response, 403)

    with world.services.database.unit_of_work() as ports:
        ports.session.execute(
            update(SignatureActivationRow)
            .where(SignatureActivationRow.token_sha256 == hashlib.sha256(token.encode()).hexdigest())
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    response = post_pdf(api, signer, pdf, credential=serial, activation=token)
    assert "expired" in assert_problem(response, 409)["detail"]
    events = signature_events(world, serial)
    assert events and all(e["outcome"] in ("failure", "denied") for e in events)


def test_wrong_pin_is_refused_audited_and_locks_after_the_limit(world: World, api: TestClient) -> None:
    serial = official_with_pin(world, api)
    pdf = blank_pdf()
    for attempt in range(1, 5):
        response = activate(api, world, serial, [pdf], pin="000111")
        problem = assert_problem(response, 403)
        assert f"{5 - attempt} attempts are left" in problem["detail"], problem
    assert "locked" in assert_problem(activate(api, world, serial, [pdf], pin="000111"), 403)["detail"]
    locked = activate(api, world, serial, [pdf], pin=PIN)
    assert_problem(locked, 429)
    assert int(locked.headers["retry-after"]) > 60
    status = api.get(f"/api/v1/credentials/{serial}/factors", headers=world["signer"].headers).json()
    assert status["pin"] is True and status["totp"] is False and status["locked_until"] is not None
    events = signature_events(world, serial, action="signature.activate")
    assert [e["outcome"] for e in events] == ["denied"] * 5 + ["failure"]
    assert "000111" not in audit_text(world, serial) and PIN not in audit_text(world, serial)


def test_totp_activation_is_single_use_per_code_and_the_seed_is_shown_once(world: World, api: TestClient) -> None:
    serial = enrol(api, world["ra-officer"], AGENCY_A1, profile="individual")
    response = api.post(f"/api/v1/credentials/{serial}/factors/totp", headers=world["ra-officer"].headers)
    assert response.status_code == 201, response.text
    enrolment = response.json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/") and enrolment["credential"] == serial.lower()
    assert response.headers["cache-control"] == "no-store"
    assert enrolment["secret"] not in audit_text(world, serial)
    # The seed is an HMAC-only, non-extractable secret in the HSM.
    assert api.post(f"/api/v1/credentials/{serial}/factors/totp", headers=world["signer"].headers).status_code == 403

    pdf = blank_pdf()
    step = int(time.time()) // 30
    assert_problem(activate(api, world, serial, [pdf]), 422)  # the code is required
    response = activate(api, world, serial, [pdf], otp=totp(enrolment["secret"], step))
    assert response.status_code == 201, response.text
    token = response.json()["activation"]
    replayed = activate(api, world, serial, [pdf], otp=totp(enrolment["secret"], step))
    assert_problem(replayed, 403)
    assert_problem(activate(api, world, serial, [pdf], otp=totp(enrolment["secret"], step + 5)), 403)
    assert_problem(activate(api, world, serial, [pdf], otp="12345"), 422)
    signed = post_pdf(api, world["signer"].headers, pdf, credential=serial, level="B-B", activation=token)
    assert signed.status_code == 200, signed.text


def test_a_batch_activation_covers_exactly_its_digests(world: World, api: TestClient) -> None:
    serial = official_with_pin(world, api)
    documents = [b"one", b"two", b"three"]
    digests = [_b64(hashlib.sha256(d).digest()) for d in documents]
    body = {"hashes": digests, "pin": PIN}
    assert (
        "count"
        in assert_problem(
            api.post(f"/api/v1/credentials/{serial}/activations", headers=world["signer"].headers, json=body), 422
        )["detail"]
    )
    response = api.post(
        f"/api/v1/credentials/{serial}/activations", headers=world["signer"].headers, json={**body, "count": 2}
    )
    assert_problem(response, 422)
    token = activate(api, world, serial, documents, pin=PIN).json()["activation"]

    def sign(values: list[str]) -> Any:
        return api.post(
            "/api/v1/signatures/digests",
            headers={**world["signer"].headers, "Govsign-Activation": token},
            json={"credential": serial, "digest_algorithm": "sha256", "digests": values, "output": "cms"},
        )

    assert_problem(sign(digests[:2]), 422)
    assert_problem(sign([*digests[:2], _b64(hashlib.sha256(b"four").digest())]), 422)
    response = sign(list(reversed(digests)))
    assert response.status_code == 200, response.text
    assert len(response.json()["signatures"]) == 3
    assert_problem(sign(digests), 409)


def test_pin_change_needs_the_current_pin_and_seals_need_no_activation(world: World, api: TestClient) -> None:
    serial = official_with_pin(world, api)
    ra = world["ra-officer"].headers
    url = f"/api/v1/credentials/{serial}/factors/pin"
    assert_problem(api.put(url, headers=ra, json={"pin": "739164"}), 422)
    assert_problem(api.put(url, headers=ra, json={"pin": "739164", "current_pin": "000000"}), 403)
    assert api.put(url, headers=ra, json={"pin": "739164", "current_pin": PIN}).status_code == 204
    assert_problem(api.put(url, headers=ra, json={"pin": "111111", "current_pin": "739164"}), 422)  # trivial PIN
    assert_problem(activate(api, world, serial, [b"x"], pin=PIN), 403)
    assert activate(api, world, serial, [b"x"], pin="739164").status_code == 201

    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    assert_problem(api.put(f"/api/v1/credentials/{seal}/factors/pin", headers=ra, json={"pin": "739164"}), 422)
    assert_problem(activate(api, world, seal, [b"x"], pin=PIN), 422)
    assert_problem(api.put(url, headers=world["ra-officer@B"].headers, json={"pin": "739164"}), 403)


def _png(draw: Any, size: tuple[int, int] = (240, 120), dpi: int = 300) -> bytes:
    """A transparent PNG drawn by ``draw(ImageDraw)`` at ``dpi``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(image))
    out = BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


SIGNATURE_PNG = _png(
    lambda d: d.line([(10, 90), (60, 20), (110, 100), (170, 30), (230, 80)], fill=(20, 40, 200, 255), width=6)
)
SEAL_PNG = _png(lambda d: d.ellipse((6, 6, 234, 234), outline=(210, 0, 0, 255), width=10), size=(240, 240))


def _register(api: TestClient, world: World, serial: str, png: bytes, **extra: Any) -> None:
    url = f"/api/v1/credentials/{serial}/stamp-image"
    response = api.put(url, headers=world["ra-officer"].headers, json={"image_png": _b64(png), **extra})
    assert response.status_code == 200, response.text


def test_an_official_signs_then_the_agency_seals_both_visible_and_valid(world: World, api: TestClient) -> None:
    from pyhanko.sign.validation import validate_pdf_signature

    from helpers.pdf import chain_context as validation_context

    official = official_with_pin(world, api)
    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    _register(api, world, official, SIGNATURE_PNG)
    _register(api, world, seal, SEAL_PNG, width_mm=36)
    pdf = blank_pdf()
    signer = world["signer"].headers

    # a seal goes only on a document its official has signed: refused and audited, nothing signed
    refused = post_pdf(api, signer, pdf, credential=seal, stamp="seal")
    assert "official has signed" in assert_problem(refused, 422)["detail"]
    assert signature_events(world, seal)[-1]["outcome"] == "failure"

    token = activate(api, world, official, [pdf], pin=PIN).json()["activation"]
    first = post_pdf(
        api, signer, pdf, credential=official, level="B-T", field_name="ChuKyLanhDao", stamp="person",
        stamp_box="330,60,565,150", activation=token,
    )  # fmt: skip
    assert first.status_code == 200, first.text
    second = post_pdf(api, signer, first.content, credential=seal, level="B-T", stamp="seal")
    assert second.status_code == 200, second.text
    chain = api.get(f"/api/v1/certificates/{seal}/chain?format=pem", headers=world["ra-officer"].headers)
    from cryptography import x509

    context = validation_context(x509.load_pem_x509_certificates(chain.content))
    signatures = PdfFileReader(BytesIO(second.content)).embedded_signatures
    assert [s.field_name for s in signatures] == ["ChuKyLanhDao", "Signature1"]
    for embedded in signatures:
        status = validate_pdf_signature(embedded, context)
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    person_rect, seal_rect = ([float(v) for v in s.sig_field["/Rect"]] for s in signatures)
    assert seal_rect[0] < person_rect[0] < seal_rect[2] < (person_rect[0] + person_rect[2]) / 2  # the left third
    events = signature_events(world, seal)
    assert events[-1]["details"]["stamp"] == "seal" and events[-1]["details"]["verification_reference"]

    # bad stamp parameters: a problem naming what is wrong
    problem = assert_problem(post_pdf(api, signer, pdf, credential=seal, stamp="true"), 422)
    assert all(word in str(problem) for word in ("person", "seal", "attachment", "copy")), problem
    person_by_agency = post_pdf(api, signer, pdf, credential=seal, stamp="person", stamp_box="1,2,300,300")
    assert "individual credential" in assert_problem(person_by_agency, 422)["detail"]
    assert_problem(post_pdf(api, signer, pdf, credential=seal, stamp="attachment", stamp_box="1,2,3"), 422)
    assert_problem(post_pdf(api, signer, pdf, credential=seal, stamp="copy", copy_form="SAO CHỤP"), 422)
    assert_problem(post_pdf(api, signer, pdf, credential=seal, title_text="PHÓ CHỦ TỊCH"), 422)


def test_attachment_and_copy_stamps_sit_top_right_of_the_first_page(world: World, api: TestClient) -> None:
    agency = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    signer = world["signer"].headers
    attachment = post_pdf(
        api, signer, blank_pdf(), credential=agency, level="B-B", stamp="attachment", document_number="123/QĐ-UBND"
    )
    assert attachment.status_code == 200, attachment.text
    copy = post_pdf(
        api, signer, attachment.content, credential=agency, level="B-B", stamp="copy", copy_form="SAO Y",
        copy_agency="VĂN PHÒNG ỦY BAN NHÂN DÂN TỈNH HÀ NAM",
    )  # fmt: skip
    assert copy.status_code == 200, copy.text
    signatures = PdfFileReader(BytesIO(copy.content)).embedded_signatures
    assert len(signatures) == 2
    for embedded in signatures:
        x1, y1, x2, y2 = (float(v) for v in embedded.sig_field["/Rect"])
        assert x2 <= 595 - 14 and y2 <= 842 - 14 and x1 > 595 / 2 and y1 > 842 * 0.75, (x1, y1, x2, y2)


def test_a_stored_seal_image_is_drawn_in_the_agency_stamp(world: World, api: TestClient) -> None:
    from PIL import Image

    official = official_with_pin(world, api)
    _register(api, world, official, SIGNATURE_PNG)
    seal = enrol(api, world["ra-officer"], AGENCY_A1, profile="organization")
    url = f"/api/v1/credentials/{seal}/stamp-image"
    body = {"image_png": _b64(SEAL_PNG), "width_mm": 40}
    assert_problem(api.put(url, headers=world["signer"].headers, json=body), 403)
    assert_problem(api.put(url, headers=world["ra-officer"].headers, json={"image_png": _b64(b"GIF89a")}), 422)
    opaque = BytesIO()
    Image.new("RGB", (10, 10)).save(opaque, format="PNG")
    assert_problem(api.put(url, headers=world["ra-officer"].headers, json={"image_png": _b64(opaque.getvalue())}), 422)
    response = api.put(url, headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["image_sha256"] == hashlib.sha256(SEAL_PNG).hexdigest()
    assert response.json()["width_mm"] == 40

    pdf = blank_pdf()
    token = activate(api, world, official, [pdf], pin=PIN).json()["activation"]
    person = post_pdf(
        api, world["signer"].headers, pdf, credential=official, level="B-B", stamp="person",
        stamp_box="330,60,565,150", activation=token,
    )  # fmt: skip
    assert person.status_code == 200, person.text
    signed = post_pdf(
        api, world["signer"].headers, person.content, credential=seal, level="B-B", stamp="seal",
        verification_line="false",
    )  # fmt: skip
    assert signed.status_code == 200, signed.text
    embedded = PdfFileReader(BytesIO(signed.content)).embedded_signatures[-1]
    appearance = embedded.sig_field["/AP"]["/N"]
    x1, _, x2, _ = (float(v) for v in embedded.sig_field["/Rect"])
    assert abs((x2 - x1) - 40 / 25.4 * 72) < 3, x2 - x1  # the seal at its registered size

    def images(stream: Any) -> int:
        resources = stream.get("/Resources", {})
        found = 0
        for xobject in resources.get("/XObject", {}).values():
            xobject = xobject.get_object()
            found += 1 if xobject.get("/Subtype") == "/Image" else images(xobject)
        return found

    assert images(appearance.get_object()) >= 1
    events = signature_events(world, seal, action="credential.stamp-image.set")
    assert [e["outcome"] for e in events] == ["denied", "failure", "failure", "success"]
