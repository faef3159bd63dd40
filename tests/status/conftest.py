"""Fixtures of the status-service tests.

``make_deployment(**settings)`` builds a CA hierarchy in a database private to the test (same
backend as ``db_backend``: SQLite and PostgreSQL), on the shared SoftHSM2 token, with a
FixedClock the test may move. The hierarchy has the shape of the shared one (EC root, RSA-2048
issuing CA, EC services) and the CA keys have the same labels, so the CA keys already on the
token are reused and only the service keys are generated: a deployment costs about a second.
Use it where a test moves the clock, rolls the responder over or runs the background loop, which
would disturb the session-wide ``initialized_runtime`` that other tests share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from govsign.clock import FixedClock, SystemClock
from govsign.config import Settings
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import HierarchySpec
from govsign.runtime import Runtime

from .support import ACTOR, Deployment

#: Same algorithms and validities as the shared hierarchy, so the CA keys on the token are reused.
STATUS_HIERARCHY = HierarchySpec(
    root_algorithm=KeyAlgorithm.EC_P256,
    root_validity_years=4,
    issuing_algorithm=KeyAlgorithm.RSA2048,
    issuing_validity_years=3,
    service_algorithm=KeyAlgorithm.EC_P256,
)


@pytest.fixture
def make_deployment(
    fresh_database_url: str, hsm_data_dir: Path, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., Deployment]]:
    """``make_deployment(**settings_overrides)`` -> a Deployment in this test's own database."""
    opened: list[Runtime] = []

    def build(**overrides: Any) -> Deployment:
        assert not opened, "one deployment per test (one fresh database)"
        settings = make_settings(hsm_data_dir, database_url=fresh_database_url, **overrides)
        clock = FixedClock(SystemClock().now())
        runtime = Runtime.open(settings, initialize=True, clock=clock)
        opened.append(runtime)
        hierarchy = runtime.execute(
            lambda ca: ca.initialize(STATUS_HIERARCHY, actor=ACTOR),
            action="ca.init",
            actor=ACTOR,
            object_id="hierarchy",
        )
        return Deployment(settings=settings, runtime=runtime, hierarchy=hierarchy, clock=clock)

    yield build
    for runtime in opened:
        runtime.close()
