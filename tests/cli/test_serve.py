"""`govsign serve`: liveness and readiness on an initialised data dir, a clean stop, and a fast
one-sentence failure on a wrong PIN before any worker starts."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from helpers.cli import GOVSIGN, Deployment, assert_one_sentence_error, free_port

STARTUP_LIMIT_SECONDS = 30.0
STOP_LIMIT_SECONDS = 30.0


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            _get(url)
            return
        time.sleep(0.2)
    raise AssertionError(f"serve did not answer {url} within {STARTUP_LIMIT_SECONDS} s: {log.read_text()}")


def test_serve_answers_healthz_and_readyz_and_stops_cleanly(deployment: Deployment) -> None:
    with deployment.lock:  # nothing else uses this deployment meanwhile
        _serve_and_check(deployment)


def _serve_and_check(deployment: Deployment) -> None:
    port = free_port()
    log = deployment.workdir / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [GOVSIGN, "serve", "--port", str(port)],
            env=deployment.env(),
            cwd=deployment.workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base}/healthz", process, log)
        assert _get(f"{base}/healthz") == (200, {"status": "ok"})
        status, body = _get(f"{base}/readyz")
        assert status == 200, body
        assert body["checks"] == {"database": "ok", "hsm": "ok"}, body
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("serve did not stop on SIGTERM") from None
    # uvicorn re-raises the signal after its graceful shutdown.
    assert returncode in (0, -signal.SIGTERM), returncode
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output
    assert not [line for line in output.splitlines() if _is_error_log(line)], output


def _is_error_log(line: str) -> bool:
    """An ERROR or CRITICAL line of the service's log (JSON lines, or uvicorn's plain text)."""
    try:
        record = json.loads(line)
    except ValueError:
        return line.lstrip().upper().startswith(("ERROR", "CRITICAL"))
    return isinstance(record, dict) and str(record.get("level", "")).upper() in ("ERROR", "CRITICAL")


def test_serve_with_a_wrong_pin_fails_fast_with_one_sentence(sqlite_deployment: Deployment) -> None:
    port = free_port()
    result = sqlite_deployment.run("serve", "--port", str(port), timeout=60, GOVSIGN_HSM_PIN="wrong")
    assert_one_sentence_error(result, "PIN")
    assert result.stdout.strip() == "", "serve started something before failing"
