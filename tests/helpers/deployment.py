"""A test deployment: services opened on the shared token over a database, with their clock."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from govsign.clock import FixedClock
from govsign.config import Settings
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services


@dataclass
class Deployment:
    """A CA hierarchy initialised in one database on the shared token, with a FixedClock."""

    settings: Settings
    """The settings the services were opened from."""
    services: Services
    """The opened services."""
    hierarchy: HierarchyResult
    """What ``init`` created."""
    clock: FixedClock
    """The services' clock (move it only in a deployment of the test's own)."""

    @property
    def issuing(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.hierarchy.issuing.certificate_der)

    @property
    def root(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.hierarchy.root.certificate_der)
