"""NIST PKITS: the 246 path-validation cases of pyhanko-certvalidator 0.33.0 through the validation core.

Each case of ``tests/fixtures/pkits/pkits.json`` is validated by
:func:`govsign.validation.paths.validate_certificate_path`: the end-entity certificate, the PKITS
trust anchor, the case's intermediates and CRLs (the anchor's CRL always), revocation required,
nothing fetched, at a fixed time inside the PKITS validity (2010-2030). The algorithm rules are
PKITS's own, as in pyhanko-certvalidator's suite: its DSA cases use SHA-1 and 1024-bit keys.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from govsign.validation.paths import ANY_POLICY, PathParameters, validate_certificate_path
from govsign.validation.report import Indication

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pkits"
#: The validation time (pyhanko-certvalidator's own run freezes the clock at it).
AT = dt.datetime(2022, 5, 1, tzinfo=dt.UTC)
ANCHOR = "TrustAnchorRootCertificate.crt"
ANCHOR_CRL = "TrustAnchorRootCRL.crl"

#: Cases whose verdict knowingly differs from the expected one: case id -> reason (as in the README).
DISAGREEMENTS: dict[str, str] = {
    "4.1.5-valid_dsa_parameter_inheritance_test5": (
        "DSA parameter inheritance: the end-entity's CRL is signed by DSA Parameters Inherited CA, whose"
        " DSA key omits its domain parameters (inherited from DSA CA, RFC 3279 section 2.3.2)."
        " pyhanko-certvalidator 0.33 carries inherited parameters along the certification path but not"
        " into CRL signature checks (DSAParametersUnavailable), so the CRL cannot be verified and, revocation"
        " being required, the verdict is INDETERMINATE/TRY_LATER instead of valid (pyhanko-certvalidator's own"
        " suite runs this case without required revocation; openssl verify fails it too: it cannot decode the"
        " parameter-less DSA key)"
    ),
}

#: The sub-indications we may give, by the error class pyhanko-certvalidator's suite expects.
SUB_INDICATIONS = {
    "PathValidationError": {"CERTIFICATE_CHAIN_GENERAL_FAILURE", "OUT_OF_BOUNDS_NO_POE", "NO_CERTIFICATE_CHAIN_FOUND"},
    "RevokedError": {"REVOKED_NO_POE", "REVOKED_CA_NO_POE"},
    "InsufficientRevinfoError": {"TRY_LATER"},
    "StaleRevinfoError": {"TRY_LATER"},
}


@dataclass(frozen=True, kw_only=True)
class Case:
    """One case of ``pkits.json``, as our entry point takes it."""

    id: str
    """PKITS test number and pyhanko-certvalidator's name of the case, e.g. ``4.1.1-valid_signatures_test1``."""
    cert: str
    """The end-entity certificate's file."""
    other_certs: tuple[str, ...]
    """The intermediates' files."""
    crls: tuple[str, ...]
    """The CRLs' files (the trust anchor's first)."""
    parameters: PathParameters
    """The policy inputs of the case; the algorithm rules of PKITS."""
    expect_valid: bool
    """The PKITS verdict (under the case's policy inputs)."""
    expected_error: str | None
    """pyhanko-certvalidator's error class for an invalid path."""
    expected_reason: str | None
    """A regular expression matching pyhanko-certvalidator's message for an invalid path."""
    pinned_path: bool
    """pyhanko-certvalidator's suite gives it the path rather than building one (name chaining)."""


def _pkits_number(test_id: str) -> str:
    """4.1.1 for 40101: section 4, subsection 01, test 01."""
    return f"{test_id[0]}.{int(test_id[1:3])}.{int(test_id[3:])}"


def _case(obj: dict[str, Any]) -> Case:
    params = obj.get("params", {})
    return Case(
        id=f"{_pkits_number(obj['id'])}-{obj['name']}",
        cert=obj["cert"],
        # a case that pins the path (name chaining 4.3.1/4.3.2) offers just those intermediates
        other_certs=tuple(obj.get("path_intermediates", obj.get("other_certs", ()))),
        crls=(ANCHOR_CRL, *obj.get("crls", ())),
        parameters=PathParameters(
            initial_policy_set=frozenset(params.get("user_initial_policy_set", [ANY_POLICY])),
            explicit_policy_required=bool(params.get("initial_explicit_policy", False)),
            policy_mapping_inhibited=bool(params.get("initial_policy_mapping_inhibit", False)),
            any_policy_inhibited=bool(params.get("initial_any_policy_inhibit", False)),
            weak_digests=frozenset({"md2", "md5"}),
            min_dsa_bits=1024,
        ),
        expect_valid="error" not in obj,
        expected_error=obj["error"]["class"] if "error" in obj else None,
        expected_reason=obj["error"]["msg_regex"] if "error" in obj else None,
        pinned_path="path_intermediates" in obj,
    )


CASES = [_case(obj) for obj in json.loads((FIXTURES / "pkits.json").read_text(encoding="utf-8"))]


def _der(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / name).read_bytes()


def _param(case: Case) -> Any:
    marks = []
    if case.id in DISAGREEMENTS:
        marks.append(pytest.mark.xfail(strict=True, reason=DISAGREEMENTS[case.id]))
    return pytest.param(case, id=case.id, marks=marks)


def test_all_cases_are_there() -> None:
    assert len(CASES) == 246
    assert len({case.id for case in CASES}) == 246
    assert set(DISAGREEMENTS) <= {case.id for case in CASES}


def test_at_most_two_disagreements() -> None:
    """The acceptance bar: at least 244 of the 246 cases agree (what `openssl verify` reaches)."""
    assert len(DISAGREEMENTS) <= 2


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_pkits_case(case: Case) -> None:
    verdict = validate_certificate_path(
        _der("certs", case.cert),
        trust_anchors=[_der("certs", ANCHOR)],
        intermediates=[_der("certs", name) for name in case.other_certs],
        crls=[_der("crls", name) for name in case.crls],
        at=AT,
        parameters=case.parameters,
    )
    assert verdict.valid is case.expect_valid, verdict.reason
    if verdict.valid:
        assert verdict.indication is Indication.TOTAL_PASSED
        assert verdict.sub_indication is None
        assert verdict.path[0] == _der("certs", case.cert)
        assert verdict.path[-1] == _der("certs", ANCHOR)
        if ANY_POLICY not in case.parameters.initial_policy_set:
            assert verdict.policies <= case.parameters.initial_policy_set
    else:
        # and it fails for the reason PKITS means, in pyhanko-certvalidator 0.33's words
        assert verdict.indication is Indication.INDETERMINATE
        assert case.expected_error is not None and case.expected_reason is not None
        assert verdict.sub_indication in SUB_INDICATIONS[case.expected_error]
        assert verdict.reason is not None
        if case.pinned_path:
            # no path is built through a name that does not chain (the suite validates a given one)
            assert verdict.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
        else:
            assert re.search(case.expected_reason, verdict.reason), verdict.reason


def test_default_algorithms_refuse_the_pkits_dsa_keys() -> None:
    """Outside PKITS the defaults are Circular 15/2025's: SHA-1 and 1024-bit DSA fail."""
    verdict = validate_certificate_path(
        _der("certs", "ValidDSASignaturesTest4EE.crt"),
        trust_anchors=[_der("certs", ANCHOR)],
        intermediates=[_der("certs", "DSACACert.crt")],
        crls=[_der("crls", ANCHOR_CRL), _der("crls", "DSACACRL.crl")],
        at=AT,
    )
    assert not verdict.valid
    assert verdict.sub_indication == "CRYPTO_CONSTRAINTS_FAILURE"


def test_no_crl_no_verdict() -> None:
    """Revocation status is required and only the CRLs given count: without them, TRY_LATER."""
    verdict = validate_certificate_path(
        _der("certs", "ValidCertificatePathTest1EE.crt"),
        trust_anchors=[_der("certs", ANCHOR)],
        intermediates=[_der("certs", "GoodCACert.crt")],
        crls=[_der("crls", ANCHOR_CRL)],
        at=AT,
    )
    assert (verdict.valid, verdict.sub_indication) == (False, "TRY_LATER")


def test_bad_input_is_refused() -> None:
    anchor = _der("certs", ANCHOR)
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_certificate_path(anchor, trust_anchors=[anchor], at=AT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="end-entity certificate"):
        validate_certificate_path(b"not DER", trust_anchors=[anchor], at=AT)
    with pytest.raises(ValueError, match="CRL"):
        validate_certificate_path(anchor, trust_anchors=[anchor], crls=[b"\x30\x03\x02\x01\x01"], at=AT)
