"""Idempotency-Key on enrolment: 20 concurrent POSTs with one key issue one certificate and all
get its serial; the same key with another body is a 409 problem. Once in-process (threads through
the TestClient, both backends) and once against a real `govsign serve --workers 2` on PostgreSQL
(two processes racing on the database)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers.world import AGENCY_A1, PROBLEM, World, assert_problem, enrol_body

CONCURRENT = 20
GOVSIGN = Path(sys.executable).parent / "govsign"


def race(post: Callable[[], Any], count: int = CONCURRENT) -> list[Any]:
    """``count`` calls of ``post`` released at the same moment from as many threads."""
    barrier = threading.Barrier(count)

    def one() -> Any:
        barrier.wait(timeout=30)
        return post()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: one(), range(count)))


def issued_with(get: Callable[[str], Any], subject_tag: str, headers: dict[str, str]) -> list[str]:
    response = get(f"/api/v1/certificates?subject_contains={subject_tag}&limit=50")
    assert response.status_code == 200, response.text
    return [item["serial"] for item in response.json()["items"]]


def check_race(responses: list[Any], serials_issued: list[str]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * CONCURRENT, [r.text for r in responses if r.status_code != 201][:3]
    serials = {r.json()["serial"] for r in responses}
    assert len(serials) == 1, serials
    assert serials_issued == list(serials), (serials_issued, serials)


def test_concurrent_retries_in_process_issue_once(world: World, direct_api: TestClient) -> None:
    caller = world["ra-officer"]
    subject_tag = f"idem{secrets.token_hex(4)}"
    body = enrol_body(AGENCY_A1, subject_tag=subject_tag)
    headers = {**caller.headers, "Idempotency-Key": f"key-{subject_tag}"}

    responses = race(lambda: direct_api.post("/api/v1/certificates", headers=headers, json=body))
    issued = issued_with(lambda url: direct_api.get(url, headers=caller.headers), subject_tag, caller.headers)
    check_race(responses, issued)

    different = direct_api.post("/api/v1/certificates", headers=headers, json={**body, "email": "khac@moj.gov.vn"})
    assert_problem(different, 409)
    # Another client's identical key is its own key space.
    other = world["ra-officer2"]
    again = direct_api.post(
        "/api/v1/certificates", headers={**other.headers, "Idempotency-Key": headers["Idempotency-Key"]}, json=body
    )
    assert again.status_code == 201 and again.json()["serial"] not in issued
    # A replay of the first request still answers the first result.
    replay = direct_api.post("/api/v1/certificates", headers=headers, json=body)
    assert replay.status_code == 201 and replay.json()["serial"] == issued[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(world: World, tmp_path: Path, workers: int) -> Iterator[str]:
    settings = world.deployment.settings
    assert settings.hsm_pin is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(settings.data_dir),
        GOVSIGN_DATABASE_URL=str(settings.database_url),
        GOVSIGN_HSM_PIN=settings.hsm_pin.get_secret_value(),
        GOVSIGN_PUBLIC_BASE_URL=settings.public_base_url,
        GOVSIGN_BACKGROUND_TASKS="false",
        GOVSIGN_LOG_LEVEL="WARNING",
    )
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(GOVSIGN), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log_path.read_text(errors="replace")
    assert "Traceback" not in output, output


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_concurrent_retries_against_two_server_processes_issue_once(world: World, tmp_path: Path) -> None:
    caller = world["ra-officer"]
    subject_tag = f"idem{secrets.token_hex(4)}"
    body = enrol_body(AGENCY_A1, subject_tag=subject_tag)
    headers = {**caller.headers, "Idempotency-Key": f"key-{subject_tag}"}

    with served(world, tmp_path, workers=2) as base, httpx.Client(base_url=base, timeout=60) as http:
        # Each request on a connection of its own, so the two worker processes both take part.
        def post() -> httpx.Response:
            with httpx.Client(base_url=base, timeout=60) as own:
                return own.post("/api/v1/certificates", headers=headers, json=body)

        responses = race(post)
        issued = issued_with(lambda url: http.get(url, headers=caller.headers), subject_tag, caller.headers)
        check_race(responses, issued)
        assert len({r.headers["x-request-id"] for r in responses}) == CONCURRENT

        different = http.post("/api/v1/certificates", headers=headers, json={**body, "validity_days": 30})
        assert different.status_code == 409 and different.headers["content-type"].startswith(PROBLEM)
