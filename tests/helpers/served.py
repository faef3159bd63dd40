"""A `govsign serve` child process on a data dir (SQLite, SoftHSM2 token store) of its own, with
the CLI and REST calls that tests use to set a scene on it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOVSIGN = Path(sys.executable).parent / "govsign"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedGovsign:
    """A running `govsign serve` and how to reach it."""

    work: Path
    env: dict[str, str]
    base_url: str

    def cli(self, *args: str) -> Any:
        """A CLI command against the same data dir; its --json output."""
        done = subprocess.run(
            [str(GOVSIGN), *args, "--json"], env=self.env, cwd=self.work, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"govsign {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    def client(self, name: str, role: str, agency: str) -> str:
        """A new API client's token."""
        return str(self.cli("client", "add", name, "--role", role, "--agency", agency)["token"])

    def call(
        self, method: str, path: str, token: str, body: object = None, *, headers: dict[str, str] | None = None
    ) -> Any:
        """One REST call; the JSON answer (bytes for a binary one). Fails the test on anything but 2xx."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        kind = "application/pdf" if isinstance(body, bytes) else "application/json"
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": kind, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                content = response.read()
                if response.headers.get("content-type", "").startswith("application/json"):
                    return json.loads(content) if content else None
                return content
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:2000]!r}") from None


@contextmanager
def serve_govsign(work: Path, **settings: str) -> Iterator[ServedGovsign]:
    """``govsign init`` and ``govsign serve`` on ``work``/data, with GOVSIGN_* ``settings``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(work / "data"),
        GOVSIGN_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        GOVSIGN_HSM_PIN="served-1234",
        GOVSIGN_LINT_WITH_PKILINT="false",
        **settings,
    )
    served = ServedGovsign(work=work, env=env, base_url=f"http://127.0.0.1:{port}")
    served.cli("init")
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([str(GOVSIGN), "serve", "--port", str(port)], env=env, cwd=work, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(served.base_url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (work / "serve.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "govsign serve did not become ready"
            time.sleep(0.3)
        yield served
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
