"""API client credentials: bearer secrets shown once, stored only as keyed hashes.

A token is ``gsk_<client id>_<secret>``. The database keeps HMAC-SHA256(server key, token):
without the server key (GOVSIGN_API_SECRET_KEY_FILE, or generated into the data dir with mode
0600) a stolen database does not let anyone test guesses, and comparing is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_TOKEN = re.compile(r"^gsk_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, kw_only=True)
class IssuedSecret:
    """A freshly generated client secret; the token is shown once and never stored."""

    client_id: str
    """The client's id (part of the token)."""
    token: str
    """The bearer token to hand to the calling system."""
    secret_hash: str
    """What is stored."""


def new_client_id() -> str:
    return secrets.token_hex(8)


def issue_secret(server_key: bytes, client_id: str | None = None) -> IssuedSecret:
    client_id = client_id or new_client_id()
    token = f"gsk_{client_id}_{secrets.token_urlsafe(32)}"
    return IssuedSecret(client_id=client_id, token=token, secret_hash=hash_token(server_key, token))


def hash_token(server_key: bytes, token: str) -> str:
    return hmac.new(server_key, token.encode("ascii"), hashlib.sha256).hexdigest()


def client_id_of(token: str) -> str | None:
    """The client id named by a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def token_matches(server_key: bytes, token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(server_key, token), stored_hash)
