"""CLI usability (issue 16). `govsign serve` warns when the CA certificates name a loopback base URL on another port than
the one it listens on (what `scripts/serve --port N` without GOVSIGN_PUBLIC_BASE_URL used to
make), and not for a public base URL behind a proxy."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govsign.cli.serve import base_url_warnings


def _ca(url: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
    now = dt.datetime.now(dt.UTC)
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def test_a_loopback_url_on_another_port_is_warned_about() -> None:
    (warning,) = base_url_warnings([_ca("http://127.0.0.1:8000/pki/crl/root-1.crl")], 19301)
    assert "port 8000" in warning and "19301" in warning and "GOVSIGN_PUBLIC_BASE_URL" in warning


def test_the_served_port_and_a_public_base_url_are_not() -> None:
    assert base_url_warnings([_ca("http://127.0.0.1:19301/pki/crl/root-1.crl")], 19301) == []
    assert base_url_warnings([_ca("https://ca.gov.vn/pki/crl/root-1.crl")], 8443) == []


def test_errors_under_json_are_a_json_object_on_stderr(tmp_path: object) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    govsign = Path(sys.executable).parent / "govsign"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_")}
    env["GOVSIGN_DATA_DIR"] = str(Path(str(tmp_path)) / "none")
    done = subprocess.run([str(govsign), "cert", "show", "0a", "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 6 and done.stdout == ""
    error = json.loads(done.stderr)
    assert error["error"] == "configuration" and error["exit_code"] == 6 and "govsign init" in error["message"]
    plain = subprocess.run([str(govsign), "cert", "show", "0a"], env=env, capture_output=True, text=True)
    assert plain.returncode == 6 and plain.stderr.startswith("error: ")
