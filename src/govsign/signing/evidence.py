"""Revocation evidence that long-term (LT/LTA) signatures embed, and the audit records name.

The runtime gathers it from our own status services (OCSP responses from our responder, CRLs
from our publisher); the signing cores only embed what they are given and never fetch anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class RevocationEvidence:
    """DER OCSP responses and CRLs covering a signer's chain (and the TSA's)."""

    ocsp_responses: tuple[bytes, ...] = ()
    """Complete DER OCSPResponse structures (responseStatus successful)."""
    crls: tuple[bytes, ...] = ()
    """DER CertificateList structures (complete CRLs or ARLs)."""
    certificates: tuple[bytes, ...] = ()
    """Extra certificates the evidence needs (OCSP responder, TSA chain), DER."""

    @property
    def is_empty(self) -> bool:
        return not (self.ocsp_responses or self.crls)

    def summary(self) -> dict[str, Any]:
        """What the audit event records: SHA-256 of each piece, never the pieces."""
        return {
            "ocsp_sha256": [hashlib.sha256(der).hexdigest() for der in self.ocsp_responses],
            "crl_sha256": [hashlib.sha256(der).hexdigest() for der in self.crls],
        }
