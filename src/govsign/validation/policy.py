"""What a verification trusts and how far it may go: the trust anchors, the extra intermediates,
the bounds on fetching and on the whole verification, and where our own CAs' status comes from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509


class StatusSource(Protocol):
    """Fresh OCSP responses for certificates whose status this service knows from its own
    records (our own CAs'), so they are checked without an HTTP round trip."""

    def ocsp_responses(self, certificates: Sequence[x509.Certificate]) -> Sequence[bytes]:
        """DER OCSPResponses for those of ``certificates`` it knows (none for the others)."""
        ...

    def crls(self, certificates: Sequence[x509.Certificate]) -> Sequence[bytes]:
        """The current DER CRLs (complete and delta) of the CAs it knows that issued ``certificates``."""
        ...


@dataclass(frozen=True, kw_only=True)
class ValidationPolicy:
    """How signatures are validated (ETSI EN 319 102-1 with the algorithm rules of Circular 15/2025)."""

    trust_anchors: tuple[bytes, ...]
    """Root certificates (DER) trusted for signatures and time-stamps: ours and the configured ones."""
    intermediates: tuple[bytes, ...] = ()
    """CA certificates (DER) offered for path building, for documents that embed only the leaf."""
    fetch_revocation: bool = True
    """Fetch OCSP and CRLs from the AIA and CRL distribution point URLs when nothing embedded answers."""
    fetch_timeout_seconds: float = 5.0
    """The bound on each network fetch."""
    timeout_seconds: float = 30.0
    """The bound on a whole verification; past it the result is INDETERMINATE."""
    time_tolerance_seconds: float = 1.0
    """Clock drift tolerated between the signing time, validity periods and revocation data."""
    max_signatures: int = 50
    """Signatures and time-stamps verified in one document at most (a hostile file may carry thousands)."""
