"""Set up the govsign side of bench/sign: init, one agency, an RA officer and a signer client.

Run by bench/sign_bench.py with the project's venv Python, in a temp dir, with
GOVSIGN_DATA_DIR etc. in the environment. It drives the real CLI (``govsign.cli.main.main``)
in one process, so the imports are paid once. The signing credential itself (an organization
certificate of the agency, RSA-2048 key generated in the HSM) is then enrolled by the driver
through the running API with the RA officer's token (the CLI's ``cert issue`` binds no agency).

Usage: python sign_setup.py OUT.json AGENCY
Writes {"init": <govsign init --json>, "ra_token": "...", "signer_token": "..."}.
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
    assert isinstance(ra, dict) and isinstance(signer, dict)
    out.write_text(
        json.dumps(
            {
                "init": init,
                "ra_token": ra["token"],
                "signer_token": signer["token"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
