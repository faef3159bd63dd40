"""What a signature activation covers, and the check that a signing request stays inside it.

An activation is made for an explicit list of hashes (one per document or digest to sign) of
one digest algorithm; it is used once, for exactly that multiset of hashes, before it expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from govsign.errors import ConflictError, InvalidInputError, PolicyViolationError

ACTIVATION_TOKEN_PREFIX = "gsa_"  # noqa: S105 - a prefix, not a secret
#: The most documents or digests one activation may cover.
MAX_ACTIVATION_HASHES = 100
#: Sole control: an activation never lives longer than five minutes.
MAX_ACTIVATION_SECONDS = 300

_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True, kw_only=True)
class ActivationScope:
    """The hashes an activation was made for."""

    hash_algorithm: str
    """sha256, sha384 or sha512."""
    hashes: tuple[str, ...]
    """Lower-case hex, in the order given."""

    @classmethod
    def of(cls, hash_algorithm: str, hashes: Sequence[bytes], *, count: int | None = None) -> ActivationScope:
        """Checked scope: known algorithm, right lengths, 1..100 hashes, the explicit count
        (required for more than one hash) equal to the number of hashes."""
        algorithm = hash_algorithm.lower() if isinstance(hash_algorithm, str) else ""
        size = _DIGEST_SIZES.get(algorithm)
        if size is None:
            raise InvalidInputError(
                f"The hash algorithm {hash_algorithm!r} is not supported; use one of {', '.join(_DIGEST_SIZES)}."
            )
        if not 1 <= len(hashes) <= MAX_ACTIVATION_HASHES:
            raise InvalidInputError(f"An activation covers 1 to {MAX_ACTIVATION_HASHES} hashes.")
        if len(hashes) > 1 and count is None:
            raise InvalidInputError("An activation for several hashes must state their count.")
        if count is not None and count != len(hashes):
            raise InvalidInputError(f"The count is {count} but {len(hashes)} hashes were given.")
        for value in hashes:
            if len(value) != size:
                raise InvalidInputError(f"A {algorithm} hash is {size} bytes long, and one of the hashes is not.")
        return cls(hash_algorithm=algorithm, hashes=tuple(bytes(value).hex() for value in hashes))

    def covers(self, hash_algorithm: str, hashes: Sequence[bytes]) -> bool:
        """Exactly these hashes (as a multiset), with the same algorithm."""
        return hash_algorithm.lower() == self.hash_algorithm and Counter(h.hex() for h in hashes) == Counter(
            self.hashes
        )


def new_activation_token() -> tuple[str, str]:
    """(token for the caller, its SHA-256 for storage): 256 random bits."""
    token = ACTIVATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, activation_token_hash(token)


def activation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ActivationState:
    """A stored activation as the check sees it."""

    credential_serial: str
    """Serial of the credential it was granted for."""
    client_id: str
    """The API client it was granted to."""
    scope: ActivationScope
    """The hashes it covers."""
    expires_at: dt.datetime
    """When it stops being usable."""
    used_at: dt.datetime | None
    """When it was used (None while unused)."""
    max_signatures: int | None = None
    """For an authorization bound to no hashes (a CSC SCAL 1 authorization of an agency seal or
    device credential): how many signatures it allows; its scope is then empty."""


def check_activation(
    state: ActivationState | None,
    *,
    credential_serial: str,
    client_id: str,
    hash_algorithm: str,
    hashes: Sequence[bytes],
    now: dt.datetime,
) -> None:
    """Refuse (with a sentence naming the reason) unless the activation allows this signing."""
    if state is None:
        raise PolicyViolationError("The signature activation is not known; the official must activate this signing.")
    if state.credential_serial != credential_serial or state.client_id != client_id:
        raise PolicyViolationError("The signature activation was made for another credential or calling system.")
    if state.used_at is not None:
        raise ConflictError("The signature activation has already been used; each activation signs once.")
    if now >= state.expires_at:
        raise ConflictError("The signature activation has expired; the official must activate this signing again.")
    if state.max_signatures is not None:
        if not 1 <= len(hashes) <= state.max_signatures:
            raise PolicyViolationError(
                f"The authorization allows {state.max_signatures} signature(s), and {len(hashes)} were asked for."
            )
        return
    if not state.scope.covers(hash_algorithm, hashes):
        raise PolicyViolationError(
            "The documents to sign are not exactly those the official activated the signature for."
        )
