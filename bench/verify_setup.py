"""Set up the govsign side of bench/verify: init, one agency, an RA officer, a signer and a verifier.

Run by bench/verify_bench.py with the project's venv Python, in a temp dir, with
GOVSIGN_DATA_DIR etc. in the environment. It drives the real CLI (``govsign.cli.main.main``)
in one process, so the imports are paid once. The signing credential (an organization
certificate of the agency, RSA-2048 key generated in the HSM) is then enrolled by the driver
through the running API with the RA officer's token, the benchmark's PDFs are signed through
the API with the signer's token, and the verifications are made with the verifier's token.

Usage: python verify_setup.py OUT.json AGENCY
Writes {"init": <govsign init --json>, "ra_token": "...", "signer_token": "...", "verifier_token": "..."}.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from govsign.cli.main import main as govsign_main


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
    out, agency = Path(sys.argv[1]), sys.argv[2]
    init = cli_json("init", "--root-key", "rsa2048", "--issuing-key", "rsa2048")  # service keys: the defaults
    assert isinstance(init, dict)
    cli_json("agency", "add", agency, "--name", "Cơ quan đo hiệu năng (bench)")
    ra = cli_json("client", "add", "bench-ra", "--role", "ra-officer", "--agency", agency)
    signer = cli_json("client", "add", "bench-signer", "--role", "signer", "--agency", agency)
    verifier = cli_json("client", "add", "bench-verifier", "--role", "verifier", "--agency", agency)
    assert isinstance(ra, dict) and isinstance(signer, dict) and isinstance(verifier, dict)
    out.write_text(
        json.dumps(
            {
                "init": init,
                "ra_token": ra["token"],
                "signer_token": signer["token"],
                "verifier_token": verifier["token"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
