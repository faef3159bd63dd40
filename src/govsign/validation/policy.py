"""What a verification trusts and how far it may go: the trust anchors, the extra intermediates,
the bounds on fetching, on the whole verification and on the size of what a document may make
the verifier do, and where our own CAs' status comes from."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from govsign.errors import UnavailableError


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
    """The bound on a whole verification (every signature and time-stamp of a document together);
    what is not validated within it is INDETERMINATE."""
    time_tolerance_seconds: float = 1.0
    """Clock drift tolerated between the signing time, validity periods and revocation data."""
    max_signatures: int = 50
    """Signatures and time-stamps verified in one document at most (a hostile file may carry thousands)."""
    max_chain_length: int = 8
    """Certificates in a certification path at most, the signer's and the trust anchor's included;
    a longer path is not accepted (real ones have 2 to 5)."""
    max_path_building_steps: int = 1000
    """Issuer look-ups the path builder may make for one signature (with its time-stamps and
    revocation data; a real one takes a few dozen): it tries every combination of candidate
    issuers, so many certificates with one name would otherwise keep it busy for minutes."""
    max_pdf_objects: int = 300_000
    """Cross-reference entries a PDF may declare, over all its revisions (the reader keeps each
    in memory, some 230 bytes apiece, and a compressed cross-reference stream declares millions
    in a few kilobytes)."""
    max_pdf_revisions: int = 1000
    """Revisions (incremental updates) a PDF may have."""
    max_signature_bytes: int = 512 * 1024
    """The largest signature (CMS, the /Contents of a PDF signature) accepted, in bytes (real ones
    take 5 to 100 KB; the reader parses a hex string at some 3 s a megabyte)."""
    max_certificates_per_signature: int = 100
    """Certificates one signature may embed (with its time-stamp tokens)."""
    max_pdf_parse_bytes: int = 4 * 1024 * 1024
    """Bytes the reader may read while parsing objects (stream data aside) in one verification: it
    parses a byte or a few at a time and keeps every token, some 250 bytes of memory each. A
    document takes about 250 bytes a page; an array of numbers about 19 bytes an element (it
    reaches the bound after some 200000, within 5 s and 60 MB)."""
    max_stream_bytes: int = 64 * 1024 * 1024
    """The most one PDF stream may decode to (a small compressed stream can expand a thousandfold)."""


class TimeBoundReachedError(UnavailableError):
    """The verification's time bound passed before everything was validated. Raised from inside
    the engine (path building, revocation checks, the difference analysis) so that CPU-bound
    work stops too, and turned into INDETERMINATE results by the validation that set the bound:
    it never reaches a caller."""


class Deadline:
    """The end of a verification's time bound, on the monotonic clock (not the wall clock the
    validation time comes from: only elapsed time matters here)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        """The length of the bound."""
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self._end - self._clock())

    def passed(self) -> bool:
        return self._clock() >= self._end

    def check(self) -> None:
        """TimeBoundReachedError once the bound has passed."""
        if self.passed():
            raise TimeBoundReachedError(f"The verification's time bound of {self.seconds:g} seconds was reached.")
