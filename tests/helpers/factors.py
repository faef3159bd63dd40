"""Officials' second factors as their authenticator apps compute them."""

from __future__ import annotations

import base64
import hashlib
import hmac


def totp(secret_base32: str, step: int) -> str:
    """The RFC 6238 code (HMAC-SHA1, 6 digits) of a base32 seed for a 30-second ``step``."""
    seed = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(seed, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return str((int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % 1_000_000).zfill(6)
