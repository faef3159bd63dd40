"""Fixtures of the API-platform tests.

``world`` (per backend, session-wide): agencies A (with sub-unit A1) and B and one API client per
role in the shared database of ``initialized_runtime`` (the session's token and CA hierarchy).
Apps are built over that database with ``world.app(**settings)`` and entered with their
lifespan; every app is a Runtime of its own in this process, on the one shared token.
Tests on the shared database compare counts before and after, never assume it empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from platform_helpers import World, build_world

from govsign.runtime import Runtime


@pytest.fixture(scope="session")
def world(initialized_runtime: Runtime) -> World:
    """Agencies and one client per role, in the shared database of this backend."""
    return build_world(initialized_runtime)


@pytest.fixture(scope="session")
def direct_api(world: World) -> Iterator[TestClient]:
    """An app without dual control (operations execute directly), entered for the session."""
    with world.app(dual_control="") as client:
        yield client


@pytest.fixture(scope="session")
def dual_api(world: World) -> Iterator[TestClient]:
    """An app with the default dual control (revoke-organization, ca-administration)."""
    with world.app() as client:
        yield client
