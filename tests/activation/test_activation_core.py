"""The pure sole-control core: RFC 6238 TOTP (the RFC's SHA-1 test vectors), PIN hashing and
the rules of what an activation covers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from govsign.activation.binding import ActivationScope, ActivationState, check_activation, new_activation_token
from govsign.activation.factors import check_new_pin, hash_pin, hotp, match_totp, pin_matches, time_step, totp_enrolment
from govsign.errors import ConflictError, InvalidInputError, PolicyViolationError

RFC_SEED = b"12345678901234567890"


def _hmac(message: bytes) -> bytes:
    return hmac.new(RFC_SEED, message, hashlib.sha1).digest()


@pytest.mark.parametrize(
    ("unix_time", "eight_digits"),
    [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")],
)
def test_rfc_6238_vectors(unix_time: int, eight_digits: str) -> None:
    at = dt.datetime.fromtimestamp(unix_time, dt.UTC)
    assert hotp(_hmac, time_step(at)) == eight_digits[-6:]
    assert match_totp(_hmac, eight_digits[-6:], at, last_used_step=None) == time_step(at)


def test_a_code_is_accepted_once_and_only_near_its_time() -> None:
    at = dt.datetime.fromtimestamp(1234567890, dt.UTC)
    code = hotp(_hmac, time_step(at))
    step = match_totp(_hmac, code, at, last_used_step=None)
    assert step is not None
    assert match_totp(_hmac, code, at, last_used_step=step) is None
    assert match_totp(_hmac, code, at + dt.timedelta(seconds=30), last_used_step=None) == step  # drift
    assert match_totp(_hmac, code, at + dt.timedelta(minutes=5), last_used_step=None) is None
    with pytest.raises(InvalidInputError):
        match_totp(_hmac, "12a456", at, last_used_step=None)


def test_enrolment_uri_and_pins() -> None:
    enrolment = totp_enrolment(RFC_SEED, account="anh@moj.gov.vn", issuer="govsign")
    assert enrolment.secret_base32 == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert enrolment.uri.startswith("otpauth://totp/govsign%3Aanh%40moj.gov.vn?secret=GEZDGNBV")
    stored = hash_pin("482915")
    assert stored.startswith("scrypt$") and "482915" not in stored
    assert pin_matches("482915", stored) and not pin_matches("482916", stored)
    assert not pin_matches("482915", "garbage")
    for weak in ("111111", "123456", "98765", "x" * 65):
        with pytest.raises(InvalidInputError):
            check_new_pin(weak)


def test_activation_scope_and_check() -> None:
    one, two = hashlib.sha256(b"1").digest(), hashlib.sha256(b"2").digest()
    scope = ActivationScope.of("SHA256", [one, two], count=2)
    assert scope.covers("sha256", [two, one]) and not scope.covers("sha256", [one, one])
    assert not scope.covers("sha384", [one, two]) and not scope.covers("sha256", [one])
    for bad in (
        lambda: ActivationScope.of("md5", [one]),
        lambda: ActivationScope.of("sha256", []),
        lambda: ActivationScope.of("sha256", [one, two]),
        lambda: ActivationScope.of("sha256", [one], count=2),
        lambda: ActivationScope.of("sha256", [one[:20]]),
    ):
        with pytest.raises(InvalidInputError):
            bad()
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    state = ActivationState(
        credential_serial="ab", client_id="c1", scope=scope, expires_at=now + dt.timedelta(minutes=5), used_at=None
    )
    check_activation(state, credential_serial="ab", client_id="c1", hash_algorithm="sha256", hashes=[one, two], now=now)
    cases: list[tuple[ActivationState | None, dict[str, object], type[Exception]]] = [
        (None, {}, PolicyViolationError),
        (state, {"client_id": "c2"}, PolicyViolationError),
        (state, {"credential_serial": "cd"}, PolicyViolationError),
        (state, {"hashes": [one]}, PolicyViolationError),
        (state, {"now": now + dt.timedelta(minutes=5)}, ConflictError),
        (ActivationState(**{**state.__dict__, "used_at": now}), {}, ConflictError),
    ]
    for case_state, overrides, error in cases:
        arguments: dict[str, object] = {
            "credential_serial": "ab", "client_id": "c1", "hash_algorithm": "sha256", "hashes": [one, two], "now": now,
        }  # fmt: skip
        arguments.update(overrides)
        with pytest.raises(error):
            check_activation(case_state, **arguments)  # type: ignore[arg-type]
    token, digest = new_activation_token()
    assert token.startswith("gsa_") and digest == hashlib.sha256(token.encode()).hexdigest()
