"""Fixtures of the validation-core tests: signing credentials on the shared token."""

from __future__ import annotations

import pytest

from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.validation.evidence import FETCHED_CRLS
from helpers.credentials import individual_credentials


@pytest.fixture(autouse=True)
def _no_crls_kept_from_other_tests() -> None:
    """Each test's CRL servers are its own (a port may be reused): start without fetched CRLs."""
    FETCHED_CRLS.clear()


@pytest.fixture(scope="module")
def credentials(initialized_services: Services, hierarchy: HierarchyResult) -> dict[KeyAlgorithm, SigningCredential]:
    return individual_credentials(initialized_services, hierarchy, "PDF verification")


@pytest.fixture(scope="module")
def store(initialized_services: Services) -> KeyStore:
    return initialized_services.keystore
