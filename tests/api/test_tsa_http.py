"""POST /pki/tsa through the FastAPI app, and the TSA with the HSM made unavailable for real
(C_Finalize through python-pkcs11's library object, as in tests/platform)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from govsign.api.app import create_app
from govsign.config import Settings
from govsign.keystore.pkcs11 import MODULE_LOCK
from govsign.services.bootstrap import Services
from govsign.services.metrics import TIMESTAMPS
from helpers.tsa import query, status, tst_info

TSA_QUERY = {"Content-Type": "application/timestamp-query"}


@pytest.fixture
def client(
    initialized_services: Services, db_backend: str, hsm_data_dir: Path, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    """The app on the shared initialised database, without the background loop."""
    settings = make_settings(hsm_data_dir, database_url=db_backend, background_tasks=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_post_answers_a_timestamp_reply(client: TestClient) -> None:
    response = client.post("/pki/tsa", content=query(nonce=99, cert_req=True), headers=TSA_QUERY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    assert response.headers["cache-control"] == "no-store"
    assert status(response.content) == ("granted", set())
    assert tst_info(response.content)["nonce"].native == 99


@pytest.mark.parametrize("body", [b"", b"not a request", query()[:-3]], ids=["empty", "garbage", "truncated"])
def test_protocol_errors_are_protocol_answers(client: TestClient, body: bytes) -> None:
    response = client.post("/pki/tsa", content=body, headers=TSA_QUERY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    assert status(response.content) == ("rejection", {"bad_data_format"})


def test_bad_algorithm_over_http(client: TestClient) -> None:
    response = client.post("/pki/tsa", content=query(algorithm="md5"), headers=TSA_QUERY)
    assert response.status_code == 200 and status(response.content) == ("rejection", {"bad_alg"})


def test_wrong_content_type_is_415(client: TestClient) -> None:
    for headers in ({"Content-Type": "application/octet-stream"}, {"Content-Type": "application/ocsp-request"}, {}):
        response = client.post("/pki/tsa", content=query(), headers=headers)
        assert response.status_code == 415
        assert response.headers["content-type"].startswith("application/problem+json")


def test_body_over_16_kib_is_413(client: TestClient) -> None:
    response = client.post("/pki/tsa", content=b"\x30" + b"\x00" * (16 * 1024), headers=TSA_QUERY)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.post("/pki/tsa", content=b"\x30" * (16 * 1024), headers=TSA_QUERY).status_code == 200


@pytest.fixture
def hsm_library(initialized_services: Services) -> Iterator[Any]:
    """The services's python-pkcs11 library object; initialised again whatever the test does."""
    lib = initialized_services.keystore._lib
    assert lib is not None and lib.initialized
    try:
        yield lib
    finally:
        with MODULE_LOCK:
            if not lib.initialized:
                lib.initialize()


def _count(outcome: str) -> float:
    return TIMESTAMPS.labels(outcome)._value.get()


def test_a_finalized_module_is_reinitialised_by_the_next_time_stamp(
    initialized_services: Services, hsm_library: Any
) -> None:
    """A module finalized under the TSA (what a crashed module looks like) is re-initialised by
    the next request, which is granted. Time-stamps refused during a real outage (the token
    taken away) are in test_hsm_token_outage.py."""
    assert initialized_services.timestamps.authority() is not None  # loaded while the HSM is up
    with MODULE_LOCK:
        hsm_library.finalize()
    granted_before = _count("granted")
    assert status(initialized_services.timestamps.answer(query(nonce=1))) == ("granted", set())
    assert _count("granted") == granted_before + 1
    assert hsm_library.initialized


def test_metrics_count_timestamps_by_outcome(client: TestClient) -> None:
    client.post("/pki/tsa", content=query(), headers=TSA_QUERY)
    client.post("/pki/tsa", content=b"junk", headers=TSA_QUERY)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'govsign_timestamps_total{outcome="granted"}' in metrics.text
    assert 'govsign_timestamps_total{outcome="bad_data_format"}' in metrics.text
