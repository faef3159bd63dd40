"""CAdES / CMS detached signing: a pure core (no HTTP, SQL or settings)."""

from govsign.signing.cms import (
    CADES_LEVELS,
    CAdESLevel,
    CMSSignatureSpec,
    SigningCredential,
    TimeStampFunction,
    raw_signature,
    sign_detached,
    sign_digest,
    sign_digests,
)
from govsign.signing.evidence import RevocationEvidence

__all__ = [
    "CADES_LEVELS",
    "CAdESLevel",
    "CMSSignatureSpec",
    "RevocationEvidence",
    "SigningCredential",
    "TimeStampFunction",
    "raw_signature",
    "sign_detached",
    "sign_digest",
    "sign_digests",
]
