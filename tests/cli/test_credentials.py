"""Officials' second factors through the CLI: a TOTP seed shown once and kept in the HSM as a
sensitive, non-extractable secret; a PIN typed (here: on stdin) and stored only as a slow hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers.cli import GOVSIGN, Deployment, assert_one_sentence_error, run


def test_enrol_totp_and_set_pin_for_an_official(deployment: Deployment) -> None:
    official = deployment.issue(
        "--profile", "individual", "--subject", "CN=Lê Thị Hai Yếu Tố,O=Bộ Tư pháp,C=VN",
        "--email", "haiyeuto@moj.gov.vn", "--generate-key", "ec-p256",
    )["serial"]  # fmt: skip
    enrolled = deployment.ok("credential", "enrol-totp", official)
    assert enrolled["credential"] == official
    assert len(enrolled["secret"]) == 32 and enrolled["otpauth_uri"].startswith("otpauth://totp/govsign")
    secrets = [o for o in deployment.token_objects() if o.get("label", "").startswith(f"govsign-totp-{official}")]
    assert len(secrets) == 1, deployment.token_objects()
    assert "sensitive" in secrets[0].get("Access", ""), secrets[0]
    assert "extractable" not in secrets[0]["Access"].split(", "), secrets[0]  # imported: sensitive, not extractable

    result = deployment.run("credential", "set-pin", official, "--pin-stdin", env=None)
    assert result.returncode != 0  # no PIN on stdin
    with deployment.lock:
        set_pin = run(
            [GOVSIGN, "credential", "set-pin", official, "--pin-stdin", "--json"],
            env=deployment.env(),
            cwd=deployment.workdir,
            input_text="482915\n",
        )
    assert set_pin.returncode == 0, set_pin.describe()
    assert json.loads(set_pin.stdout) == {"credential": official, "pin_set": True}
    factors = deployment.ok("credential", "factors", official)
    assert factors == {"credential": official, "totp": True, "pin": True, "locked_until": None}
    rows = deployment.query("SELECT pin_hash FROM credential_factors")
    assert rows and all("482915" not in str(row[0]) and str(row[0]).startswith("scrypt$") for row in rows)
    events = deployment.query("SELECT details_json FROM audit_events WHERE action = 'credential.factor.enrol'")
    text = " ".join(str(row[0]) for row in events)
    assert "482915" not in text and enrolled["secret"] not in text and len(events) >= 2

    seal = deployment.issue(
        "--profile", "organization", "--subject", "CN=Văn phòng Hai Yếu Tố,O=Bộ Tư pháp,C=VN",
        "--generate-key", "ec-p256",
    )["serial"]  # fmt: skip
    refused = deployment.run("credential", "enrol-totp", seal)
    assert refused.returncode == 2
    assert_one_sentence_error(refused)


def test_set_stamp_image(deployment: Deployment, tmp_path: Path) -> None:
    from PIL import Image

    seal = deployment.issue(
        "--profile", "organization", "--subject", "CN=Văn phòng Con Dấu,O=Bộ Tư pháp,C=VN", "--generate-key", "ec-p256"
    )["serial"]  # fmt: skip
    png = tmp_path / "seal.png"
    Image.new("RGBA", (20, 20), (200, 0, 0, 100)).save(png, format="PNG")
    stored = deployment.ok("credential", "set-stamp-image", seal, str(png), "--width-mm", "38")
    digest = hashlib.sha256(png.read_bytes()).hexdigest()
    assert stored == {"credential": seal, "image_sha256": digest, "width_mm": 38.0}
    (tmp_path / "not.png").write_bytes(b"not a png")
    refused = deployment.run("credential", "set-stamp-image", seal, str(tmp_path / "not.png"))
    assert refused.returncode == 2
    assert_one_sentence_error(refused)
