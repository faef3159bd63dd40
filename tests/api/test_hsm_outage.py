"""The PKCS#11 library finalized under a running app, in-process (C_Finalize through
python-pkcs11's lib object: what a crashed or restarted module looks like to the caller). The
keystore answers the error with one reconnection that re-initialises the module, so the very
next call succeeds: no 503, no restart. Real outages (the token's directory taken away and
given back) are in test_hsm_token_outage.py, on a served instance with a token store of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from govsign.keystore.pkcs11 import MODULE_LOCK
from govsign.storage.models import CertificateRow
from helpers.world import AGENCY_A1, World, enrol_body


def certificate_rows(world: World) -> int:
    with world.services.database.read_only() as ports:
        return int(ports.session.scalar(select(func.count()).select_from(CertificateRow)) or 0)


@pytest.fixture
def hsm_library(direct_api: TestClient) -> Iterator[Any]:
    """The app's python-pkcs11 library object; initialised again whatever the test does."""
    lib = direct_api.app.state.services.keystore._lib
    assert lib is not None and lib.initialized
    try:
        yield lib
    finally:
        with MODULE_LOCK:
            if not lib.initialized:
                lib.initialize()


def test_a_finalized_module_is_reinitialised_by_the_next_call(
    world: World, direct_api: TestClient, hsm_library: Any
) -> None:
    officer = world["ra-officer"]
    keystore = direct_api.app.state.services.keystore
    rows_before = certificate_rows(world)
    keys_before = len(keystore.list_private_keys())
    with MODULE_LOCK:
        hsm_library.finalize()
    assert not hsm_library.initialized

    enrolment = direct_api.post("/api/v1/certificates", headers=officer.headers, json=enrol_body(AGENCY_A1))
    assert enrolment.status_code == 201, enrolment.text
    assert hsm_library.initialized and keystore.available
    assert certificate_rows(world) == rows_before + 1
    assert len(keystore.list_private_keys()) == keys_before + 1  # the one key of the enrolment

    with MODULE_LOCK:
        hsm_library.finalize()
    ready = direct_api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "hsm": "ok"}
