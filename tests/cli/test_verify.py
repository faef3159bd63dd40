"""`govsign verify FILE`: the same report as the API; exit 0 only when valid, 1 otherwise, 2 on
bad input; the text output keeps Vietnamese names intact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from helpers.cli import Deployment
from helpers.pdf import blank_pdf

SUBJECT = "CN=Nguyễn Thị Kiểm Tra,O=Sở Tư pháp tỉnh Bà Rịa – Vũng Tàu,C=VN"


#: Signs blank.pdf with the key the CLI generated (run in a process of its own: one process serves
#: one data directory's SoftHSM2 token store).
SIGNER = """
import sys
from cryptography.hazmat.primitives.serialization import Encoding
from govsign.config import Settings
from govsign.keystore.api import KeyAlgorithm
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf

serial, label, source, target = sys.argv[1:]
services = Services.open(Settings())
try:
    key = services.keystore.find_key(label=label, algorithm=KeyAlgorithm.EC_P256)
    chain = services.certificates.chain(serial, Requester.operator("operator:test"))
    der = [c.public_bytes(Encoding.DER) for c in chain]
    credential = SigningCredential(key=key, certificate_der=der[0], chain_der=tuple(der[1:]))
    with open(source, "rb") as pdf:
        signed = sign_pdf(pdf.read(), credential, services.keystore, PDFSignatureSpec(level="B-B"))
finally:
    services.close()
with open(target, "wb") as out:
    out.write(signed)
"""


def _signed_pdf(deployment: Deployment, tmp_path: Path) -> Path:
    """A B-B PDF signed with a key the CLI generated in the deployment's HSM."""
    issued = deployment.issue("--profile", "individual", "--subject", SUBJECT, "--generate-key", "ec-p256")
    source, target = tmp_path / "blank.pdf", tmp_path / "signed.pdf"
    source.write_bytes(blank_pdf())
    completed = subprocess.run(
        [sys.executable, "-c", SIGNER, issued["serial"], issued["key_label"], str(source), str(target)],
        env=deployment.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return target


def test_a_signed_pdf_is_valid_in_json_and_in_text(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    with sqlite_deployment.lock:
        path = _signed_pdf(sqlite_deployment, tmp_path)
        as_json = sqlite_deployment.run("verify", str(path), "--json")
        as_text = sqlite_deployment.run("verify", str(path))
    assert as_json.returncode == 0, as_json.describe()
    report = json.loads(as_json.stdout)
    assert report["conclusion"] == "valid"
    (signature,) = report["signatures"]
    assert signature["indication"] == "TOTAL_PASSED"
    assert signature["signer"]["common_name"] == "Nguyễn Thị Kiểm Tra"
    assert x509.load_pem_x509_certificate(signature["signer"]["certificate_pem"].encode())
    assert as_text.returncode == 0, as_text.describe()
    assert "HỢP LỆ" in as_text.stdout and "Nguyễn Thị Kiểm Tra" in as_text.stdout


def test_an_unsigned_pdf_exits_1(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(blank_pdf())
    result = sqlite_deployment.run("verify", str(path), "--json")
    assert result.returncode == 1, result.describe()
    assert json.loads(result.stdout)["conclusion"] == "no-signatures"


@pytest.mark.parametrize("content", [b"", b"not a pdf"], ids=["empty", "garbage"])
def test_bad_input_exits_2_with_one_line(sqlite_deployment: Deployment, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(content)
    result = sqlite_deployment.run("verify", str(path))
    assert result.returncode == 2, result.describe()
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    missing = sqlite_deployment.run("verify", str(tmp_path / "missing.pdf"))
    assert missing.returncode == 2, missing.describe()


def test_a_detached_signature_over_a_file_is_verified_with_signature(
    sqlite_deployment: Deployment, tmp_path: Path
) -> None:
    """A CMS signature that is not one (a PDF given as the signature) is refused as bad input."""
    document = tmp_path / "document.txt"
    document.write_text("Công văn")
    not_a_signature = tmp_path / "document.p7s"
    not_a_signature.write_bytes(blank_pdf())
    result = sqlite_deployment.run("verify", str(document), "--signature", str(not_a_signature))
    assert result.returncode == 2, result.describe()
    assert "CMS" in result.stderr
