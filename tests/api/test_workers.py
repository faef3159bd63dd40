"""``govsign serve --workers 2``: the failed-authentication limit holds across the worker
processes (20 bad tokens with a limit of 10 pass 10, not 20), a valid token still passes from
that address, ``/metrics`` is one consistent view whichever worker answers (prometheus_client's
multiprocess mode, in a directory of the server's own under the data dir), and the
deployment-wide jobs run in one worker only (one lease holder)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from govsign.cli.serve import metrics_directory
from govsign.clock import SystemClock
from govsign.services.bootstrap import Services
from helpers.cli import GOVSIGN, free_port
from helpers.fixtures import DEPLOYMENT_HIERARCHY, TEST_BASE_URL, TEST_HSM_PIN, build_settings
from helpers.protocols import clean_env

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60.0


@pytest.fixture
def served(fresh_database_url: str, hsm_data_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Services, str, Path]]:
    """(base URL, in-process services over the same database, a valid token, metrics dir)."""
    settings = build_settings(hsm_data_dir, database_url=fresh_database_url)
    services = Services.open(settings, initialize=True, clock=SystemClock())
    try:
        services.hierarchy.initialize(DEPLOYMENT_HIERARCHY, actor="test:workers")
        services.directory.add_agency("wk-a", "Bộ Tư pháp", None, actor="test:workers")
        token = services.directory.add_client("wk-auditor", role="auditor", agency_id="wk-a", actor="test:workers")
        port = free_port()
        env = clean_env(
            GOVSIGN_DATA_DIR=str(hsm_data_dir),
            GOVSIGN_DATABASE_URL=fresh_database_url,
            GOVSIGN_HSM_PIN=TEST_HSM_PIN,
            GOVSIGN_PUBLIC_BASE_URL=TEST_BASE_URL,
            GOVSIGN_AUTH_FAILURE_LIMIT="10",
            GOVSIGN_BACKGROUND_LEASE_SECONDS="3",
            GOVSIGN_LOG_LEVEL="WARNING",
        )
        metrics_dir = metrics_directory(settings, "127.0.0.1", port)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # an earlier run's: emptied at start
        log = tmp_path / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [GOVSIGN, "serve", "--port", str(port), "--workers", "2"],
                env=env,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                assert process.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            time.sleep(1.0)  # both workers up
            yield base, services, token.token, metrics_dir
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")
    finally:
        services.close()


def _fresh_connection_get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=20) as client:  # a new connection: any worker may take it
        return client.get(url, headers=headers or {})


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_limits_metrics_and_jobs_are_one_deployment_across_two_workers(
    served: tuple[str, Services, str, Path], fresh_database_url: str
) -> None:
    base, services, token, metrics_dir = served
    assert not (metrics_dir / "counter_999999.db").exists(), "the metrics directory was not emptied at start"
    while dt.datetime.now(dt.UTC).second >= 50:  # the limiter counts per minute
        time.sleep(0.5)
    bad = {"Authorization": "Bearer gsk_ZZZZZZZZZZZZZZZZ_" + "A" * 43}
    with ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda _: _fresh_connection_get(f"{base}/api/v1/agencies", bad).status_code, range(20))
        )
    assert sorted(statuses) == [401] * 10 + [429] * 10, statuses
    assert _fresh_connection_get(f"{base}/api/v1/agencies", {"Authorization": f"Bearer {token}"}).status_code == 200
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: _fresh_connection_get(f"{base}/healthz"), range(20)))
    served_by = {
        path.stem.rsplit("_", 1)[1]
        for path in metrics_dir.glob("counter_*.db")
        if any("/api/v1/agencies" in key for key, *_ in MmapedDict.read_all_values_from_file(str(path)))
    }
    assert len(served_by) == 2, f"the API requests did not reach both workers: {sorted(served_by)}"

    scrapes = [_fresh_connection_get(f"{base}/metrics").text for _ in range(6)]
    route = {"method": "GET", "route": "/api/v1/agencies"}
    for text in scrapes:
        assert _sample(text, "govsign_http_requests_total", **route, status="401") == 10, text
        assert _sample(text, "govsign_http_requests_total", **route, status="429") == 10, text
        assert _sample(text, "govsign_http_requests_total", **route, status="200") == 1, text
        assert _sample(text, "govsign_http_requests_total", method="GET", route="/healthz", status="200") >= 20, text

    # one lease holder among the workers: the deployment-wide jobs run once
    lease = services.leases.current("maintenance")
    assert lease is not None, "no worker runs the background jobs"
    assert lease.holder.split(":")[1] in {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("*.db")}
