"""Where a CSC batch-1 signature spends its time, without HTTP: cProfile of 300 seal signatures
through ``RemoteSigning.authorize`` + ``sign_hashes`` on a fresh SQLite + SoftHSM2 deployment in a
temp dir (bench/sign_setup.py makes it). Prints CPU ms per signature and the top 40 entries by
cumulative time. Usage: .venv/bin/python bench/csc_profile.py [N]"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    work = Path(tempfile.mkdtemp(prefix="govsign-csc-profile-"))
    try:
        os.environ.update(
            GOVSIGN_DATA_DIR=str(work / "data"), GOVSIGN_HSM_PIN="profile-1234", GOVSIGN_LINT_WITH_PKILINT="false"
        )
        setup = Path(__file__).resolve().parent / "sign_setup.py"
        subprocess.run([sys.executable, str(setup), str(work / "setup.json"), "bench"], cwd=work, check=True)
        data = json.loads((work / "setup.json").read_text())

        from govsign.audit.events import AuditContext
        from govsign.config import load_settings
        from govsign.services.authorization import Requester
        from govsign.services.bootstrap import Services
        from govsign.services.certificates import enrolment_from_parameters
        from govsign.services.remote_signing import AuthorizationRequest, HashSigningRequest

        services = Services.open(load_settings())
        try:
            ra_principal = services.authentication.authenticate_token(data["ra_token"])
            signer_principal = services.authentication.authenticate_token(data["signer_token"])
            assert ra_principal is not None and signer_principal is not None
            ra, signer = (
                Requester.client(ra_principal, AuditContext()),
                Requester.client(signer_principal, AuditContext()),
            )
            request = enrolment_from_parameters(
                {"profile": "organization", "subject": "CN=Profile,O=Profile,C=VN", "key_algorithm": "rsa2048"}, "bench"
            )
            issued = services.certificates.enrol(request, ra)
            serial = issued.record.serial_hex  # type: ignore[union-attr]
            remote, digest = services.remote_signing, [hashlib.sha256(b"profile").digest()]

            def one() -> None:
                sad = remote.authorize(signer, serial, AuthorizationRequest(count=1)).sad
                remote.sign_hashes(
                    signer,
                    HashSigningRequest(
                        credential_id=serial, sad=sad, hash_algorithm="sha256", hashes=digest,
                        signature_scheme="rsa-pkcs1v15",
                    ),
                )  # fmt: skip

            for _ in range(20):
                one()
            profile = cProfile.Profile()
            started = time.process_time()
            profile.enable()
            for _ in range(count):
                one()
            profile.disable()
            cpu = time.process_time() - started
            print(f"CPU per batch-1 signature (services, no HTTP, under cProfile): {1000 * cpu / count:.2f} ms")
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        finally:
            services.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
