"""Second factors of an official: TOTP (RFC 6238 over RFC 4226 HOTP) and a PIN.

The TOTP seed is shown once to the official and then lives only in the HSM, as a secret that
can compute HMAC-SHA1 and nothing else; so verification takes the HMAC as a function
(``hmac_sha1``) and never sees the seed. The PIN is stored as a scrypt hash with a random salt.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from govsign.errors import InvalidInputError

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
TOTP_SEED_BYTES = 20
#: Codes of the previous and next step are accepted too (clock drift of the official's phone).
TOTP_DRIFT_STEPS = 1

PIN_MIN_LENGTH = 6
PIN_MAX_LENGTH = 64
#: scrypt cost: about 16 MiB (128 * N * r bytes) and deliberately slow per check, so a stolen table
#: is slow to attack; the online guessing limit is the failure lockout, not this.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


@dataclass(frozen=True, kw_only=True)
class TOTPEnrolment:
    """What the official is shown once: the seed in base32 and as an otpauth:// URI."""

    secret_base32: str
    """The seed, base32 without padding (what authenticator apps accept)."""
    uri: str
    """otpauth://totp/... for a QR code."""


def new_totp_seed() -> bytes:
    """A random 160-bit seed (RFC 4226 section 4 recommends 160 bits)."""
    return secrets.token_bytes(TOTP_SEED_BYTES)


def totp_enrolment(seed: bytes, *, account: str, issuer: str) -> TOTPEnrolment:
    """The seed as shown to the official (SHA1, 6 digits, 30 s: what every app supports)."""
    secret = base64.b32encode(seed).decode("ascii").rstrip("=")
    label = quote(f"{issuer}:{account}", safe="")
    uri = (
        f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
        f"&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}"
    )
    return TOTPEnrolment(secret_base32=secret, uri=uri)


def hotp(hmac_sha1: Callable[[bytes], bytes], counter: int) -> str:
    """RFC 4226 HOTP value for counter, with the HMAC computed by the caller (the HSM)."""
    digest = hmac_sha1(counter.to_bytes(8, "big"))
    offset = digest[-1] & 0x0F
    code = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(code % 10**TOTP_DIGITS).zfill(TOTP_DIGITS)


def time_step(at: dt.datetime) -> int:
    """The RFC 6238 time step (T0 = 0, X = 30 s) of an aware datetime."""
    if at.tzinfo is None:
        raise ValueError("the clock must give aware datetimes")
    return int(at.timestamp()) // TOTP_STEP_SECONDS


def check_totp_format(code: str) -> str:
    """The code without spaces; InvalidInputError unless it is six digits."""
    cleaned = code.replace(" ", "") if isinstance(code, str) else ""
    if len(cleaned) != TOTP_DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        raise InvalidInputError(f"A one-time code is {TOTP_DIGITS} digits.")
    return cleaned


def match_totp(
    hmac_sha1: Callable[[bytes], bytes], code: str, at: dt.datetime, *, last_used_step: int | None
) -> int | None:
    """The time step the code belongs to (within the drift window and after the last step used,
    so a code is never accepted twice), or None when it does not match."""
    cleaned = check_totp_format(code)
    now_step = time_step(at)
    matched: int | None = None
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        # compare every candidate (constant work), keep the first match
        if hmac.compare_digest(hotp(hmac_sha1, step), cleaned) and matched is None:
            matched = step
    return matched


def _normalised_pin(pin: str) -> bytes:
    if not isinstance(pin, str):
        raise InvalidInputError("The PIN must be text.")
    text = unicodedata.normalize("NFC", pin)
    if not PIN_MIN_LENGTH <= len(text) <= PIN_MAX_LENGTH:
        raise InvalidInputError(f"A PIN has {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} characters.")
    return text.encode("utf-8")


def check_new_pin(pin: str) -> None:
    """Refuse PINs that are trivially guessed: too short, one repeated character, or a run."""
    raw = _normalised_pin(pin)
    text = raw.decode("utf-8")
    if len(set(text)) == 1:
        raise InvalidInputError("A PIN must not repeat one character.")
    if text.isdigit() and (text in "01234567890123456789" or text in "98765432109876543210"):
        raise InvalidInputError("A PIN must not be a run of consecutive digits.")


def hash_pin(pin: str) -> str:
    """scrypt$N$r$p$salt$hash (base64), for storage."""
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(_normalised_pin(pin), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(derived).decode()}"


def pin_matches(pin: str, stored: str) -> bool:
    """Whether pin matches a hash made by :func:`hash_pin` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(hash_b64)
        candidate = _normalised_pin(pin)
    except (ValueError, InvalidInputError):
        return False
    derived = hashlib.scrypt(
        candidate, salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(derived, expected)
