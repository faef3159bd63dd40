"""CAdES / CMS detached signing: a pure core (no HTTP, SQL or settings)."""

from govsign.signing.cms import (
    CMSSignatureSpec,
    SigningCredential,
    raw_signature,
    sign_detached,
    sign_digest,
    sign_digests,
)

__all__ = ["CMSSignatureSpec", "SigningCredential", "raw_signature", "sign_detached", "sign_digest", "sign_digests"]
