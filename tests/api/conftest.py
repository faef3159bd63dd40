"""Fixtures of the API tests.

``world`` (per backend, session-wide): agencies A (with sub-unit A1) and B and API clients of
every role in the shared database of ``initialized`` (the session's token and CA hierarchy).
Apps are built over that database with ``world.app(**settings)`` and entered with their
lifespan; every app opens services of its own in this process, on the one shared token. Tests
on the shared database compare counts before and after, never assume it empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from helpers.deployment import Deployment
from helpers.world import AGENCY_B, World, build_world


@pytest.fixture(scope="session")
def world(initialized: Deployment) -> World:
    """Agencies and one client per role (and a second signer, and a signer of agency B)."""
    world = build_world(initialized)
    world.add_caller("signer@B", "signer", AGENCY_B)
    world.add_caller("signer2", "signer", world["signer"].agency)
    return world


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
