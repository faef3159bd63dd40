"""The refusal battery: bad input and bad settings that `govsign` must refuse with one sentence
and without changing anything.

Each case runs on its own, bracketed by snapshots taken just before and just after it, with the
deployment locked so that nothing else runs in between: the certificates, revocations and CAs
read straight from the database, and the token's objects as pkcs11-tool lists them. What
``cert list --json`` shows is derived from those rows, so it is compared once around the whole
battery (before the first case and after the last), which keeps the battery fast; a case that
changed anything is still named by its own snapshots. conftest.py runs the battery in a
background thread (one per deployment) while the tests work on another deployment; the tests in
test_refusals.py then check the recorded outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.cli import Deployment, Result, State

# fmt: off
ISSUE_EC = ("cert", "issue", "--profile", "individual", "--subject", "CN=Phải từ chối,C=VN", "--generate-key", "ec-p256")
# fmt: on


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    """Command line; {name} is replaced by a CSR path or by {valid}/{revoked} serials."""
    mentions: tuple[str, ...]
    """What the one-sentence error must name (case-insensitive)."""
    env: dict[str, str] = field(default_factory=dict)
    """Settings changed for this command."""


@dataclass(frozen=True)
class Outcome:
    result: Result
    mentions: tuple[str, ...]
    before: State
    after: State


@dataclass(frozen=True)
class Battery:
    outcomes: dict[str, Outcome]
    """By case name."""
    listing_before: tuple[tuple[Any, ...], ...]
    """``cert list --json`` (serial, status, reason) before the first case."""
    listing_after: tuple[tuple[Any, ...], ...]
    """... and after the last one."""
    certificate_rows: int
    """Rows in the certificates table at the end."""


#: Refusals that concern the data: run on every storage backend.
DATA_CASES: dict[str, Case] = {
    "malformed-csr": Case(
        ("cert", "issue", "--profile", "device", "--csr", "{garbage}", "--subject", "CN=X,C=VN"), ("CSR",)
    ),
    "csr-with-bad-signature": Case(
        ("cert", "issue", "--profile", "device", "--csr", "{badsig}", "--subject", "CN=X,C=VN"), ("signature",)
    ),
    "rsa-1024-csr": Case(("cert", "issue", "--profile", "device", "--csr", "{rsa1024}"), ("1024",)),
    "sha1-csr": Case(("cert", "issue", "--profile", "device", "--csr", "{sha1}"), ("SHA-1",)),
    "unknown-profile": Case(
        ("cert", "issue", "--profile", "emperor", "--subject", "CN=X,C=VN", "--generate-key", "ec-p256"), ("emperor",)
    ),
    "validity-over-five-years": Case((*ISSUE_EC, "--validity-days", "1830"), ("1830",)),
    "wrong-pin": Case(ISSUE_EC, ("PIN",), {"GOVSIGN_HSM_PIN": "wrong"}),
    "revoke-unknown-serial": Case(
        ("cert", "revoke", "0badc0ffee0ddf00d", "--reason", "key-compromise"), ("badc0ffee0ddf00d",)
    ),
    "revoke-twice": Case(("cert", "revoke", "{revoked}", "--reason", "superseded"), ("already revoked", "{revoked}")),
    "generate-key-without-subject": Case(
        ("cert", "issue", "--profile", "individual", "--generate-key", "ec-p256"), ("--subject",)
    ),
    "both-csr-and-generate-key": Case(
        ("cert", "issue", "--profile", "device", "--csr", "{device}", "--generate-key", "ec-p256"),
        ("--csr", "--generate-key"),
    ),
    "invalidity-date-in-the-future": Case(
        ("cert", "revoke", "{valid}", "--reason", "key-compromise", "--invalidity-date", "2999-01-01T00:00:00+07:00"),
        ("invalidity",),
    ),
    "invalidity-date-without-time-zone": Case(
        ("cert", "revoke", "{valid}", "--reason", "key-compromise", "--invalidity-date", "2020-01-01T00:00:00"),
        ("time zone",),
    ),
    "email-not-an-address": Case((*ISSUE_EC, "--email", "not-an-address"), ("not-an-address",)),
    "subject-without-country": Case(
        ("cert", "issue", "--profile", "individual", "--subject", "CN=Không quốc gia", "--generate-key", "ec-p256"),
        ("C=VN",),
    ),
    "unparseable-subject": Case(
        ("cert", "issue", "--profile", "individual", "--subject", "rác", "--generate-key", "ec-p256"), ("rác",)
    ),
}

#: Refusals of bad settings: they do not depend on the storage backend (run on SQLite only).
SETTINGS_CASES: dict[str, Case] = {
    "unreachable-database": Case(
        ISSUE_EC, ("GOVSIGN_DATABASE_URL",), {"GOVSIGN_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}
    ),
    "nonexistent-pkcs11-module": Case(
        ISSUE_EC, ("GOVSIGN_PKCS11_MODULE",), {"GOVSIGN_PKCS11_MODULE": "/nonexistent/libpkcs11.so"}
    ),
    "missing-token-label": Case(ISSUE_EC, ("GOVSIGN_HSM_TOKEN_LABEL", "nope"), {"GOVSIGN_HSM_TOKEN_LABEL": "nope"}),
    "bad-public-base-url": Case(
        ISSUE_EC, ("GOVSIGN_PUBLIC_BASE_URL",), {"GOVSIGN_PUBLIC_BASE_URL": "ftp://pki.example.gov.vn"}
    ),
    "bad-database-url-scheme": Case(ISSUE_EC, ("GOVSIGN_DATABASE_URL",), {"GOVSIGN_DATABASE_URL": "mysql://x/y"}),
    "missing-pin-file": Case(
        ISSUE_EC, ("GOVSIGN_HSM_PIN_FILE",), {"GOVSIGN_HSM_PIN": "", "GOVSIGN_HSM_PIN_FILE": "/nonexistent/pin"}
    ),
    "non-numeric-validity-setting": Case(
        ISSUE_EC,
        ("GOVSIGN_SUBSCRIBER_DEFAULT_VALIDITY_DAYS",),
        {"GOVSIGN_SUBSCRIBER_DEFAULT_VALIDITY_DAYS": "two years"},
    ),
}


def run_battery(deployment: Deployment, csrs: Mapping[str, Path], cases: Mapping[str, Case]) -> Battery:
    """Run each case between two snapshots; the certificates it needs are issued from CSRs first
    (so the token's objects stay as they are). The deployment stays locked for the whole battery:
    a test of the main thread on the same deployment (test_verify issues certificates on the
    SQLite one) would otherwise change the listing between the first and the last snapshot."""
    with deployment.lock:
        return _run_battery(deployment, csrs, cases)


def _run_battery(deployment: Deployment, csrs: Mapping[str, Path], cases: Mapping[str, Case]) -> Battery:
    with deployment.lock:
        valid = deployment.issue(
            "--profile", "device", "--csr", str(csrs["valid"]), "--subject", "CN=Còn hiệu lực,C=VN"
        )["serial"]  # fmt: skip
        revoked = deployment.issue(
            "--profile", "device", "--csr", str(csrs["revoked"]), "--subject", "CN=Đã thu hồi,C=VN"
        )["serial"]  # fmt: skip
        deployment.ok("cert", "revoke", revoked, "--reason", "key-compromise")
        listing_before = deployment.view(fresh=True).listing
    values = {name: str(path) for name, path in csrs.items()}
    values.update(valid=valid, revoked=revoked)
    outcomes = {}
    for name, case in cases.items():
        args = [arg.format(**values) for arg in case.args]
        with deployment.lock:
            before = deployment.state()
            result = deployment.run(*args, env=deployment.env(**case.env))
            after = deployment.state()
        outcomes[name] = Outcome(
            result=result,
            mentions=tuple(mention.format(**values) for mention in case.mentions),
            before=before,
            after=after,
        )
    with deployment.lock:
        final = deployment.view(fresh=True)
    return Battery(
        outcomes=outcomes,
        listing_before=listing_before,
        listing_after=final.listing,
        certificate_rows=len(final.state.certificates),
    )
