"""What verifications trust besides our own roots: read once at start-up from the settings' PEM
bundles, so that a bad file stops the service with a sentence naming it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from govsign.errors import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    """What verifications trust besides our own roots, read once at start-up."""

    anchors: tuple[bytes, ...] = ()
    """Extra trust anchors (DER)."""
    intermediates: tuple[bytes, ...] = ()
    """Extra CA certificates for path building (DER)."""
    fetch_timeout_seconds: float = 5.0
    """Bound on each revocation fetch."""
    timeout_seconds: float = 30.0
    """Bound on a whole verification."""

    @classmethod
    def load(
        cls, anchors: Path | None, intermediates: Path | None, *, fetch_timeout: float, timeout: float
    ) -> TrustSettings:
        """Read the PEM bundles; ConfigurationError naming the setting when one cannot be read."""
        return cls(
            anchors=_bundle(anchors, "GOVSIGN_TRUST_ANCHORS_FILE"),
            intermediates=_bundle(intermediates, "GOVSIGN_INTERMEDIATES_FILE"),
            fetch_timeout_seconds=fetch_timeout,
            timeout_seconds=timeout,
        )


def _bundle(path: Path | None, setting: str) -> tuple[bytes, ...]:
    if path is None:
        return ()
    try:
        data = path.read_bytes()
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:  # one DER certificate
            certificates = [x509.load_der_x509_certificate(data)]
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{setting} ({path}) is not a readable PEM bundle of certificates: {exc}") from None
    return tuple(certificate.public_bytes(Encoding.DER) for certificate in certificates)
