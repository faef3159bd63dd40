"""Set up the govsign side of bench/ocsp: init, issue N certificates from CSRs, revoke a few.

Run by bench/ocsp_bench.py with the project's venv Python, in a temp dir, with
GOVSIGN_DATA_DIR etc. in the environment. It drives the real CLI (``govsign.cli.main.main``)
in one process, so the ~0.7 s of imports is paid once instead of once per certificate.

Usage: python ocsp_setup.py OUT.json N REVOKED [RESPONDER_KEY]
Writes {"issuing_ca": {...}, "certificates": [{serial, pem, status, revoked_at, reason}, ...]}.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govsign.cli.main import main as govsign_main

REVOCATION_REASONS = ("key-compromise", "superseded", "cessation-of-operation", "affiliation-changed")


def cli_json(*argv: str) -> object:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            govsign_main([*argv, "--json"])
        except SystemExit as exc:
            if exc.code:
                sys.stderr.write(buffer.getvalue())
                raise SystemExit(f"govsign {' '.join(argv)} failed with exit code {exc.code}") from None
    return json.loads(buffer.getvalue())


def main() -> None:
    out, count, revoked = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    service_key = sys.argv[4] if len(sys.argv) > 4 else "rsa2048"
    workdir = out.parent
    init = cli_json("init", "--root-key", "rsa2048", "--issuing-key", "rsa2048", "--service-key", service_key)
    assert isinstance(init, dict)
    certificates = []
    for number in range(1, count + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govsign bench"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"OCSP bench {number}"),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        csr_path = workdir / f"csr-{number}.pem"
        csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        issued = cli_json("cert", "issue", "--profile", "individual", "--csr", str(csr_path))
        assert isinstance(issued, dict)
        certificates.append(
            {"serial": issued["serial"], "pem": issued["certificate_pem"], "status": "valid", "reason": None}
        )
    # Revoke every (count // revoked)-th certificate, spread over the list.
    step = max(1, count // max(1, revoked))
    for index, certificate in enumerate(certificates[::step][:revoked]):
        reason = REVOCATION_REASONS[index % len(REVOCATION_REASONS)]
        view = cli_json("cert", "revoke", certificate["serial"], "--reason", reason)
        assert isinstance(view, dict)
        certificate.update(status="revoked", reason=reason, revoked_at=view["revoked_at"])
    out.write_text(json.dumps({"issuing_ca": init["issuing_ca"], "certificates": certificates}, indent=1))


if __name__ == "__main__":
    main()
