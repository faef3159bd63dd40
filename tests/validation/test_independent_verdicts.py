"""Independent verdicts (issue 11): poppler's ``pdfsig`` and pyHanko's own validator give the
verdict recorded for every PDF the validation tests build, and where one differs from ours the
table says why.

The documents are built by the validation tests' own builders: ``test_pdf_validation`` (B-B to
B-LTA with EC and RSA keys, a changed byte, an untrusted root, page content changed after
signing, a signer revoked after signing), ``test_foreign_pki`` (another PKI: untrusted, trusted
with its CRL served, its CRL unreachable) and ``test_pdf_attacks`` (the 51 PDF-Insecurity attacks
and the form-filling control; its tests are run with a bench that hands over the document they
would validate instead of validating it).

The three verifiers get the same trust. Ours: ``validate_pdf`` with the root (and the issuing CA
as intermediate, as the service's policy offers it) and our own records' status, concluded by
``conclude``. pdfsig: an NSS database trusting the same root, knowing the same CA certificates
and holding the same complete CRLs, run with ``-no-ocsp`` (NSS asks OCSP only online, at the AIA
URL, which nothing answers here; the CRLs in its database it does check), always at the wall
clock. pyHanko: ``async_validate_pdf_signature`` / ``async_validate_pdf_timestamp`` with a
``ValidationContext`` on the same roots, intermediates, OCSP responses and CRLs, revocation
required, nothing fetched, at our validation time, on pyHanko's default (strict) reader.

A verdict is the whole document's: ``valid`` when every signature and document time-stamp passes,
``invalid`` when one fails, ``indeterminate`` otherwise, ``no-signatures``, or ``unreadable`` when
the verifier refuses the file. For pdfsig a signature passes with "Signature is Valid." and
"Certificate is Trusted."; it fails with "Signature is Invalid.", "Digest Mismatch.", "Document
isn't signed or corrupted data." or "Certificate has been Revoked."; anything else ("Signature has
not yet been verified.", "Unknown Validation Failure.", an untrusted issuer) decides nothing. For
pyHanko a signature fails when it is not intact and valid, is revoked or breaks the DocMDP
policy, or when validating it raises (a SignatureValidationError counts by its AdES status),
and passes on ``bottom_line`` (``trusted`` for a document time-stamp).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import inspect
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from govsign.clock import Clock, FixedClock, SystemClock
from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import StatusSource, ValidationPolicy
from govsign.validation.report import conclude
from helpers.ca import revoke
from helpers.credentials import signing_credential
from helpers.fixtures import DEPLOYMENT_HIERARCHY, build_settings, postgres_schema
from helpers.pdf import require_tool
from validation import test_foreign_pki as foreign
from validation import test_pdf_attacks as attacks
from validation import test_pdf_validation as validation


class Verdict(enum.StrEnum):
    """A verifier's verdict on a whole document: our ``Conclusion``'s values, and ``unreadable``."""

    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"
    NO_SIGNATURES = "no-signatures"
    UNREADABLE = "unreadable"


VALID, INVALID, INDETERMINATE = Verdict.VALID, Verdict.INVALID, Verdict.INDETERMINATE
NO_SIGNATURES, UNREADABLE = Verdict.NO_SIGNATURES, Verdict.UNREADABLE


@dataclass(frozen=True)
class Case:
    """One document: the verdict of each verifier, and why pdfsig's or pyHanko's differs from ours."""

    name: str
    ours: Verdict
    pdfsig: Verdict
    pyhanko: Verdict
    pdfsig_why: str = ""
    pyhanko_why: str = ""


def agreed(name: str, verdict: Verdict) -> Case:
    return Case(name, verdict, verdict, verdict)


# -- why the verdicts differ ------------------------------------------------------------------------

PDFSIG_NO_DIFF = (
    "pdfsig checks only that the signed byte range hashes to the signature and that the signer is"
    " trusted; it does no difference analysis of what was added after the signed revision (it prints"
    " 'Not total document signed', as it does for every legitimate later revision, a DSS update or a"
    " second signature), so a change of what the page shows after signing passes. We fail it:"
    " modifications after signing that the signature does not permit."
)
PDFSIG_NO_COVERAGE = (
    "pdfsig verifies the bytes the /ByteRange names and nothing about where they are: that the signed"
    " part ends a revision, that the xref and trailer in force are covered. The relocated or re-declared"
    " signature still hashes right, so it says valid ('Not total document signed'). We fail it: the"
    " signature does not cover a whole revision (coverage partial)."
)
PDFSIG_NO_DOCUMENT_TIMESTAMPS = (
    "pdfsig (poppler 22.12) cannot validate document time-stamps: it lists the /DocTimeStamp as one"
    " more signature, 'Signature has not yet been verified.', which decides nothing; the signature"
    " itself is valid and trusted for it too."
)
PDFSIG_UNVERIFIED_FORGERY = (
    "pdfsig lists the forged signature field but verifies nothing: it reports a syntax error for the"
    " /Contents or /ByteRange on stderr, or cannot parse the CMS, and says 'Signature has not yet been"
    " verified.' or 'Unknown Validation Failure.', which is no verdict. We refuse the file as unreadable"
    " (InvalidInputError) or fail the signature (FORMAT_FAILURE / HASH_FAILURE), as pyHanko does."
)
PDFSIG_NOT_A_SIGNATURE = (
    "pdfsig takes every /Sig field for a signature, whatever its /SubFilter, and cannot verify this one"
    " ('Signature has not yet been verified.'): no verdict. pyHanko and we do not take a dictionary with"
    " an unsupported /SubFilter (adbe.x509.rsa_sha1 with /Cert, or a made-up one) for a signature: the"
    " document has none."
)
PDFSIG_FORGED_DOCUMENT_TIMESTAMP = (
    "pdfsig cannot validate document time-stamps ('Signature has not yet been verified.' for the forged"
    " /DocTimeStamp), so it sees a valid signature and an undecided one. We fail the time-stamp (its"
    " imprint is not that of the document, or it is no time-stamp) or refuse the file (garbage), as"
    " pyHanko does."
)
PYHANKO_FORM_FILLING = (
    "pyHanko's difference analysis takes a new value and appearance of a text field for form filling,"
    " which its default policy permits after an approval signature, even for a field that was already"
    " filled when the document was signed; we fail it, since the signer saw the old value (a shadow"
    " replace attack)."
)

CASES: list[Case] = [
    # test_pdf_validation: what govsign signs verifies at its level
    *(agreed(f"{level}-{key}", VALID) for key in ("ec", "rsa") for level in ("b-b", "b-t", "b-lt")),
    *(
        Case(f"b-lta-{key}", VALID, INDETERMINATE, VALID, pdfsig_why=PDFSIG_NO_DOCUMENT_TIMESTAMPS)
        for key in ("ec", "rsa")
    ),
    # test_pdf_validation: tampering, trust, changes after signing, revocation
    agreed("b-t-ec-fetching-allowed", VALID),
    agreed("changed-byte-in-signed-range", INVALID),
    agreed("untrusted-root", INDETERMINATE),
    Case("page-content-changed", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF),
    Case(
        "revoked-after-signing-b-b",
        INDETERMINATE,
        INVALID,
        INVALID,
        pdfsig_why=(
            "NSS finds the signer on the issuing CA's CRL in its database and pdfsig says 'Certificate has"
            " been Revoked.', a failure. We say INDETERMINATE/REVOKED_NO_POE (EN 319 102-1): without a"
            " time-stamp nothing proves whether the signature was made before or after the revocation."
        ),
        pyhanko_why=(
            "pyHanko's validate_pdf_signature reports the signer revoked at the validation time"
            " (INTACT:REVOKED), a failure; we say INDETERMINATE/REVOKED_NO_POE, as EN 319 102-1 does for"
            " a revocation nothing shows the signature predates."
        ),
    ),
    Case(
        "revoked-after-signing-b-t",
        VALID,
        INVALID,
        INVALID,
        pdfsig_why=(
            "pdfsig checks the signer's certificate at the wall clock and ignores the signature time-stamp:"
            " the revocation (after the time-stamp) makes it 'Certificate has been Revoked.'. We run past"
            " signature validation (EN 319 102-1 5.6.2.4): the time-stamp proves the signature existed"
            " before the revocation, so it stays TOTAL_PASSED."
        ),
        pyhanko_why=(
            "pyHanko's validate_pdf_signature validates the signer's certificate at the validation time and"
            " does not use the (trusted) signature time-stamp as proof of existence before the revocation"
            " (INTACT:REVOKED); its AdES past-signature validation, which our core runs, does."
        ),
    ),
    # test_foreign_pki
    agreed("foreign-untrusted", INDETERMINATE),
    agreed("foreign-trusted-crl-served", VALID),
    Case(
        "foreign-trusted-crl-unreachable",
        INDETERMINATE,
        VALID,
        INDETERMINATE,
        pdfsig_why=(
            "NSS does not require revocation information: with no CRL in its database and OCSP off"
            " (there is none in the certificate anyway) it trusts the certificate. We never pass a signature"
            " whose revocation status could not be established (INDETERMINATE/TRY_LATER), nor does pyHanko"
            " with revocation required."
        ),
    ),
    # test_pdf_attacks: incremental saving attacks
    Case("isa_page_content_replaced", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF),
    Case("isa_content_stream_overwritten", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF),
    Case("isa_page_added", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF),
    Case(
        "isa_objects_appended_without_xref",
        INVALID,
        VALID,
        VALID,
        pdfsig_why=PDFSIG_NO_DIFF,
        pyhanko_why=(
            "pyHanko's reader does not reconstruct cross-reference tables: the objects appended after %%EOF"
            " without an xref section belong to no revision, so for it the signed revision is the last one"
            " and nothing was modified (EXTENDED_WITH_NONE). We fail a signature that does not cover the"
            " file when no revision accounts for the rest: a viewer that repairs the file shows the new page."
        ),
    ),
    Case("isa_fresh_xref_without_prev", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF),
    # signature wrapping attacks
    Case("swa_second_signed_part_relocated", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_COVERAGE),
    Case("swa_byte_range_does_not_reach_the_end", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_COVERAGE),
    agreed("swa_byte_range_shortened_in_place", INVALID),
    Case("swa_signature_dictionary_redeclared", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_COVERAGE),
    # universal signature forgery
    *(
        Case(f"usf[{name}]", UNREADABLE, INDETERMINATE, UNREADABLE, pdfsig_why=PDFSIG_UNVERIFIED_FORGERY)
        for name in (
            "contents-missing",
            "contents-empty",
            "contents-zeroed",
            "contents-zeroed-in-signed-document",
            "contents-null",
            "contents-name",
            "contents-garbage",
            "contents-indirect-stream",
            "byte-range-missing",
        )
    ),
    agreed("usf[contents-of-another-document]", INVALID),
    agreed("usf[contents-without-certificates]", INDETERMINATE),
    *(
        Case(f"usf[{name}]", INVALID, INDETERMINATE, INVALID, pdfsig_why=PDFSIG_UNVERIFIED_FORGERY)
        for name in (
            "byte-range-null",
            "byte-range-empty",
            "byte-range-outside-file",
            "byte-range-past-end",
            "byte-range-negative",
            "byte-range-huge",
            "byte-range-names",
            "byte-range-reals",
        )
    ),
    agreed("usf[byte-range-zero]", INVALID),
    agreed("usf[byte-range-odd-length]", INVALID),
    agreed("usf[byte-range-indirect]", INVALID),
    *(
        Case(f"usf[{name}]", NO_SIGNATURES, INDETERMINATE, NO_SIGNATURES, pdfsig_why=PDFSIG_NOT_A_SIGNATURE)
        for name in ("cert-nonsense", "cert-real-signature-nonsense", "subfilter-nonsense")
    ),
    Case(
        "usf_document_timestamp[over-other-data]",
        INVALID,
        INDETERMINATE,
        INVALID,
        pdfsig_why=PDFSIG_FORGED_DOCUMENT_TIMESTAMP,
    ),
    Case(
        "usf_document_timestamp[garbage]",
        UNREADABLE,
        INDETERMINATE,
        UNREADABLE,
        pdfsig_why=PDFSIG_FORGED_DOCUMENT_TIMESTAMP,
    ),
    Case(
        "usf_document_timestamp[not-a-timestamp]",
        INVALID,
        INDETERMINATE,
        INVALID,
        pdfsig_why=PDFSIG_FORGED_DOCUMENT_TIMESTAMP,
    ),
    # shadow attacks
    *(
        Case(f"shadow_{name}", INVALID, VALID, INVALID, pdfsig_why=PDFSIG_NO_DIFF)
        for name in (
            "hide_overlay_removed",
            "hide_overlay_freed",
            "hide_overlay_repointed",
            "hide_annotation_removed",
            "hide_annotation_flagged_hidden",
            "hide_annotation_added",
            "replace_font",
            "hide_and_replace_xref_to_earlier_definition",
            "hide_and_replace_catalog_swapped",
        )
    ),
    Case(
        "shadow_hide_and_replace_xref_to_hidden_object",
        INVALID,
        VALID,
        INVALID,
        pdfsig_why=PDFSIG_NO_DIFF,
    ),  # pyHanko agrees by refusing: it raises on the object header that names another object
    Case(
        "shadow_replace_form_field_value",
        INVALID,
        VALID,
        VALID,
        pdfsig_why=PDFSIG_NO_DIFF,
        pyhanko_why=PYHANKO_FORM_FILLING,
    ),
    Case(
        "shadow_replace_form_field_appearance",
        INVALID,
        VALID,
        VALID,
        pdfsig_why=PDFSIG_NO_DIFF,
        pyhanko_why=PYHANKO_FORM_FILLING + " Here only the appearance changes; the value stays.",
    ),
    Case(
        "shadow_replace_form_field_appearance_stream",
        INVALID,
        VALID,
        VALID,
        pdfsig_why=PDFSIG_NO_DIFF,
        pyhanko_why=(
            "pyHanko's difference analysis takes the redefined appearance stream of a filled text field"
            " for form filling too (the field's /V and /AP are unchanged); we fail a change of a field"
            " that was filled when signed."
        ),
    ),
    Case(
        "shadow_replace_read_only_form_field",
        INVALID,
        VALID,
        VALID,
        pdfsig_why=PDFSIG_NO_DIFF,
        pyhanko_why=(
            PYHANKO_FORM_FILLING + " pyHanko does not look at the read-only flag (/Ff 1) either: no one may"
            " fill such a field, and we fail the change."
        ),
    ),
    # not an attack: filling in a field that was empty when signed
    agreed("filling_in_a_field_that_was_empty_when_signed_is_permitted", VALID),
]


# -- trust: what each verifier is given -------------------------------------------------------------


@dataclass(frozen=True)
class Relying:
    """A relying party's trust, given alike to the three verifiers."""

    roots: tuple[bytes, ...]
    """Trust anchors (DER)."""
    intermediates: tuple[bytes, ...]
    """CA certificates it knows (DER), as the service's policy offers its issuing CAs."""
    now: dt.datetime
    """The validation time (ours and pyHanko's; pdfsig validates at the wall clock)."""
    nss: Path
    """An NSS database trusting ``roots``, knowing ``intermediates`` and holding the complete CRLs."""
    ocsps: tuple[bytes, ...] = ()
    """OCSP responses from our records, for pyHanko (our core asks the records itself)."""
    crls: tuple[bytes, ...] = ()
    """CRLs, for pyHanko (our core asks the records, or fetches them)."""
    status: StatusSource | None = None
    """Our own records (the service's ``verifications.status``), for our core."""
    fetch: bool = False
    """Whether our core may fetch revocation data."""
    clock: Clock | None = None
    """The deployment's clock when it runs (the shared one): the validation time is then its
    time when validating, not ``now`` (documents are signed after the relying party is made)."""

    def at(self) -> dt.datetime:
        return self.clock.now() if self.clock is not None else self.now

    def policy(self) -> ValidationPolicy:
        return ValidationPolicy(
            trust_anchors=self.roots,
            intermediates=self.intermediates,
            fetch_revocation=self.fetch,
            fetch_timeout_seconds=2.0,
        )

    def pyhanko_context(self) -> ValidationContext:
        return ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(der) for der in self.roots],
            other_certs=[asn1_x509.Certificate.load(der) for der in self.intermediates],
            ocsps=list(self.ocsps),
            crls=list(self.crls),
            revocation_mode="require",
            allow_fetching=False,
            moment=self.at(),
        )


def _nss_db(
    directory: Path, roots: tuple[bytes, ...], cas: tuple[bytes, ...] = (), crls: tuple[bytes, ...] = ()
) -> Path:
    """An NSS database trusting ``roots``, knowing the CA certificates ``cas`` (NSS takes a CRL
    only from a CA it knows) and holding the complete CRLs ``crls``."""
    directory.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", str(directory), "--empty-password"], check=True, capture_output=True)
    certificates = [*((der, "CT,C,C") for der in roots), *((der, ",,") for der in cas)]
    for index, (der, trust) in enumerate(certificates):
        path = directory / f"cert{index}.der"
        path.write_bytes(der)
        add = ["certutil", "-A", "-d", str(directory), "-n", f"cert{index}", "-t", trust, "-i", str(path)]
        subprocess.run(add, check=True, capture_output=True)
    for index, der in enumerate(crls):
        path = directory / f"crl{index}.der"
        path.write_bytes(der)
        subprocess.run(
            ["crlutil", "-I", "-d", str(directory), "-t", "1", "-i", str(path)], check=True, capture_output=True
        )
    return directory


def _relying(services: Services, hierarchy: HierarchyResult, certificates: list[bytes], nss: Path) -> Relying:
    """A deployment's trust: its root and issuing CA, our records' OCSP responses for
    ``certificates`` and the CAs' current complete and delta CRLs."""
    status = services.verifications.status
    parsed = [x509.load_der_x509_certificate(der) for der in certificates]
    issuing_crls = services.evidence.current_crls(hierarchy.issuing)  # complete, delta
    root_crls = list(status.crls(parsed))  # the root's complete and delta CRLs
    roots, intermediates = (hierarchy.root.certificate_der,), (hierarchy.issuing.certificate_der,)
    return Relying(
        roots=roots,
        intermediates=intermediates,
        now=services.clock.now(),
        clock=services.clock,
        nss=_nss_db(nss, roots, intermediates, (issuing_crls[0], root_crls[0])),
        ocsps=tuple(status.ocsp_responses(parsed)),
        crls=(*issuing_crls, *root_crls),
        status=status,
    )


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


# -- the documents, from the validation tests' builders --------------------------------------------


@dataclass(frozen=True)
class Document:
    pdf: bytes
    relying: Relying


class _Captured(Exception):  # not an error: carries a document out of an attack test
    def __init__(self, pdf: bytes) -> None:
        super().__init__("captured")
        self.pdf = pdf


@dataclass(frozen=True)
class _CapturingBench(attacks.Bench):
    """The attack tests' bench, signing as theirs does, but handing over the document they
    validate instead of validating it (their own run checks the signature passes before the attack)."""

    def sign_valid(self, pdf: bytes) -> bytes:
        return self.sign(pdf)

    def validate(self, pdf: bytes) -> NoReturn:
        raise _Captured(pdf)


def _attack_tests() -> dict[str, Callable[[attacks.Bench], None]]:
    """The attack module's tests that take the bench alone: ISA, SWA, shadow attacks, the control."""
    return {
        name.removeprefix("test_"): function
        for name, function in vars(attacks).items()
        if name.startswith("test_") and list(inspect.signature(function).parameters) == ["bench"]
    }


def _parameters(function: Callable[..., Any]) -> list[Any]:
    """The ``pytest.param`` cases of a test's ``parametrize`` mark."""
    (mark,) = [mark for mark in getattr(function, "pytestmark", []) if mark.name == "parametrize"]
    return list(mark.args[1])


def _attacked(test: Callable[[attacks.Bench], None], bench: _CapturingBench) -> bytes:
    try:
        test(bench)
    except _Captured as captured:
        return captured.pdf
    raise AssertionError(f"{test.__name__} validated no document")


def _attack_documents(bench: _CapturingBench, relying: Relying) -> dict[str, Document]:
    documents = {name: Document(_attacked(test, bench), relying) for name, test in _attack_tests().items()}
    material = attacks._material(bench)
    forgeries = {"usf": attacks.USF_CASES, "usf_document_timestamp": _parameters(attacks.test_usf_document_timestamp)}
    for prefix, cases in forgeries.items():
        for case in cases:
            forge = case.values[0]
            documents[f"{prefix}[{case.id}]"] = Document(forge(material), relying)
    return documents


@pytest.fixture(scope="module")
def work(session_workspace: Path) -> Path:
    """A directory of this module's (not tmp_path_factory's, which other sessions in the tree prune)."""
    for tool in ("pdfsig", "certutil", "crlutil"):
        require_tool(tool)
    return Path(tempfile.mkdtemp(prefix="verdicts-", dir=session_workspace))


@pytest.fixture(scope="module")
def shared_documents(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    work: Path,
) -> dict[str, Document]:
    """The documents of test_pdf_validation and test_pdf_attacks, signed in the shared deployment."""
    services = initialized_services
    tsa = services.timestamps.authority()
    assert tsa is not None
    certificates = [c.certificate_der for c in credentials.values()]
    certificates += [hierarchy.issuing.certificate_der, tsa.signer.certificate_der]
    relying = _relying(services, hierarchy, certificates, work / "nss-shared")
    documents: dict[str, Document] = {}
    for algorithm, key in ((KeyAlgorithm.EC_P256, "ec"), (KeyAlgorithm.RSA2048, "rsa")):
        for level in ("B-B", "B-T", "B-LT", "B-LTA"):
            signed = validation._sign(services, credentials[algorithm], store, level)
            documents[f"{level.lower()}-{key}"] = Document(signed, relying)
    b_b = documents["b-b-ec"].pdf
    # the change of test_a_changed_byte_in_the_signed_range_is_a_hash_failure (made inline there)
    changed = bytearray(b_b)
    position = changed.index(b"/MediaBox")
    changed[position + 1 : position + 2] = b"m"
    documents["changed-byte-in-signed-range"] = Document(bytes(changed), relying)
    # the trust of test_an_untrusted_root_gives_no_certificate_chain_found: another certificate as anchor
    other = (credentials[KeyAlgorithm.RSA2048].certificate_der,)
    untrusted = Relying(
        roots=other, intermediates=(), now=relying.now, clock=relying.clock, nss=_nss_db(work / "nss-untrusted", other)
    )
    documents["untrusted-root"] = Document(b_b, untrusted)
    documents["page-content-changed"] = Document(validation._append_page_content(documents["b-t-ec"].pdf), relying)
    # test_known_revocation_data_means_nothing_is_fetched: a B-T signature validated with fetching allowed
    documents["b-t-ec-fetching-allowed"] = Document(documents["b-t-ec"].pdf, replace(relying, fetch=True))
    bench = _CapturingBench(services, hierarchy, credentials[KeyAlgorithm.EC_P256], store)
    documents.update(_attack_documents(bench, relying))
    return documents


@pytest.fixture(scope="module")
def revoked_documents(
    db_backend: str, hsm_data_dir: Path, work: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Document]]:
    """The documents of test_revocation_after_the_time_stamp_keeps_b_t_valid_and_makes_b_b_indeterminate,
    in a deployment of this module's own (its clock moves), started 15 minutes back so that the
    revocation is in the past for pdfsig too."""
    with ExitStack() as stack:
        if db_backend.startswith("sqlite"):
            url = f"sqlite:///{work / 'revoked.sqlite3'}"
        else:
            url = stack.enter_context(postgres_schema(str(request.getfixturevalue("postgres_server_url")), "gs_v"))
        clock = FixedClock(SystemClock().now() - dt.timedelta(minutes=15))
        services = Services.open(build_settings(hsm_data_dir, database_url=url), initialize=True, clock=clock)
        stack.callback(services.close)
        hierarchy = services.hierarchy.initialize(DEPLOYMENT_HIERARCHY, actor="test:verdicts")
        credential = signing_credential(services, hierarchy, subject="CN=Revoked later (verdicts),C=VN")
        plain = validation._sign(services, credential, services.keystore, "B-B")
        stamped = validation._sign(services, credential, services.keystore, "B-T")
        clock.advance(dt.timedelta(minutes=5))
        serial = format(x509.load_der_x509_certificate(credential.certificate_der).serial_number, "x")
        revoke(services, serial, RevocationReason.KEY_COMPROMISE)
        services.crls.publish()  # the CRL given to pdfsig and pyHanko lists the revocation
        clock.advance(dt.timedelta(minutes=5))
        tsa = services.timestamps.authority()
        assert tsa is not None
        certificates = [credential.certificate_der, hierarchy.issuing.certificate_der, tsa.signer.certificate_der]
        relying = _relying(services, hierarchy, certificates, work / "nss-revoked")
        yield {
            "revoked-after-signing-b-b": Document(plain, relying),
            "revoked-after-signing-b-t": Document(stamped, relying),
        }


def _some_other_root() -> x509.Certificate:
    """The unrelated root of test_untrusted_then_trusted_with_a_reachable_crl (made inline there)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = foreign._name("Some Other Root")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(foreign.NOW - dt.timedelta(days=1))
        .not_valid_after(foreign.NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def foreign_documents(work: Path) -> Iterator[dict[str, Document]]:
    """The documents of test_foreign_pki with its trust: its PKI untrusted, then trusted with its CRL
    served (our core fetches it; pdfsig and pyHanko are given it), and trusted with its CRL
    distribution point not answering."""
    server = foreign._CRLServer(("127.0.0.1", 0), foreign._Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pki = foreign._pki(f"http://127.0.0.1:{server.server_address[1]}/root.crl")
        server.crl = pki.crl_der
        signed = foreign._signed(pki)
        other = (_der(_some_other_root()),)
        unreachable = foreign._pki("http://127.0.0.1:9/root.crl")  # discard port: nothing answers

        def relying(name: str, roots: tuple[bytes, ...], crls: tuple[bytes, ...] = ()) -> Relying:
            nss = _nss_db(work / name, roots, crls=crls)
            return Relying(roots=roots, intermediates=(), now=foreign.NOW, nss=nss, crls=crls, fetch=True)

        yield {
            "foreign-untrusted": Document(signed, relying("nss-other", other)),
            "foreign-trusted-crl-served": Document(
                signed, relying("nss-foreign", (*other, _der(pki.root)), (pki.crl_der,))
            ),
            "foreign-trusted-crl-unreachable": Document(
                foreign._signed(unreachable), relying("nss-unreachable", (_der(unreachable.root),))
            ),
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def corpus(
    shared_documents: dict[str, Document],
    revoked_documents: dict[str, Document],
    foreign_documents: dict[str, Document],
) -> dict[str, Document]:
    return {**shared_documents, **revoked_documents, **foreign_documents}


# -- the three verifiers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What one verifier said: its verdict and the details behind it."""

    verdict: Verdict
    details: str


def _combine(outcomes: list[Verdict]) -> Verdict:
    """A document's verdict from those of its signatures and time-stamps (as ``conclude``)."""
    if not outcomes:
        return NO_SIGNATURES
    if INVALID in outcomes:
        return INVALID
    return VALID if all(outcome is VALID for outcome in outcomes) else INDETERMINATE


def ours_verdict(document: Document) -> Seen:
    relying = document.relying
    try:
        result = validate_pdf(BytesIO(document.pdf), relying.policy(), now=relying.at(), status=relying.status)
    except InvalidInputError as exc:
        return Seen(UNREADABLE, str(exc))
    details = [
        f"{s.indication}/{s.sub_indication} {s.coverage} {s.modifications_after_signing}" for s in result.signatures
    ]
    details += [f"time-stamp {t.indication}/{t.sub_indication}" for t in result.timestamps]
    return Seen(Verdict(conclude(result.signatures, result.timestamps).value), "; ".join(details))


_READ_ERRORS = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError)


def pyhanko_verdict(document: Document) -> Seen:
    return asyncio.run(_pyhanko_verdict(document))


async def _pyhanko_verdict(document: Document) -> Seen:
    try:
        signatures = PdfFileReader(BytesIO(document.pdf)).embedded_signatures
    except _READ_ERRORS as exc:
        return Seen(UNREADABLE, f"{type(exc).__name__}: {exc}")
    outcomes: list[Verdict] = []
    details: list[str] = []
    for signature in signatures:
        context = document.relying.pyhanko_context()  # one each: a context remembers the certificates it saw
        status: Any
        try:
            if signature.sig_object_type == "/DocTimeStamp":
                status = await async_validate_pdf_timestamp(signature, context)
            else:
                status = await async_validate_pdf_signature(signature, context)
        except SignatureValidationError as exc:
            outcomes.append(INDETERMINATE if exc.ades_status is AdESStatus.INDETERMINATE else INVALID)
            details.append(f"{signature.field_name}: {outcomes[-1]}, refused ({exc})")
            continue
        except _READ_ERRORS as exc:  # a signature dictionary it cannot make sense of
            outcomes.append(INVALID)
            details.append(f"{signature.field_name}: {outcomes[-1]}, refused ({type(exc).__name__}: {exc})")
            continue
        if not (status.intact and status.valid) or status.revoked or status.docmdp_ok is False:
            outcomes.append(INVALID)
        elif status.bottom_line if isinstance(status, PdfSignatureStatus) else status.trusted:
            outcomes.append(VALID)
        else:
            outcomes.append(INDETERMINATE)
        details.append(f"{signature.field_name}: {outcomes[-1]}, {status.summary()}")
    return Seen(_combine(outcomes), "; ".join(details))


def _run_pdfsig(path: Path, nss: Path) -> str:
    run = subprocess.run(
        ["pdfsig", "-nssdir", str(nss), "-no-ocsp", str(path)], capture_output=True, check=False, timeout=60
    )
    return (run.stdout + run.stderr).decode("utf-8", "replace")


#: What pdfsig says of a signature's value and of its certificate; anything else decides nothing.
_PDFSIG_SIGNATURE = {
    "Signature is Valid.": VALID,
    "Signature is Invalid.": INVALID,
    "Digest Mismatch.": INVALID,
    "Document isn't signed or corrupted data.": INVALID,
}
_PDFSIG_CERTIFICATE = {"Certificate is Trusted.": VALID, "Certificate has been Revoked.": INVALID}


def pdfsig_verdict(text: str) -> Seen:
    """pdfsig's verdict from what it prints (it exits 0 whatever it finds)."""
    said = " | ".join(
        line.strip(" -")
        for line in text.splitlines()
        if line.startswith("Signature #") or "Validation:" in line or "document signed" in line or "Error" in line
    )
    if "does not contain any signatures" in text:
        return Seen(NO_SIGNATURES, said)
    blocks = re.split(r"(?m)^Signature #\d+:", text)[1:]
    if not blocks:
        return Seen(UNREADABLE, text.strip())
    outcomes = []
    for block in blocks:
        signature = re.search(r"- Signature Validation: (.*)", block)
        certificate = re.search(r"- Certificate Validation: (.*)", block)
        outcome = _PDFSIG_SIGNATURE.get(signature.group(1).strip(), INDETERMINATE) if signature else INDETERMINATE
        if outcome is VALID:
            outcome = (
                _PDFSIG_CERTIFICATE.get(certificate.group(1).strip(), INDETERMINATE) if certificate else INDETERMINATE
            )
        outcomes.append(outcome)
    return Seen(_combine(outcomes), said)


@dataclass(frozen=True)
class Observed:
    ours: Seen
    pdfsig: Seen
    pyhanko: Seen


@pytest.fixture(scope="module")
def observed(corpus: dict[str, Document], work: Path) -> dict[str, Observed]:
    """Each verifier's verdict on each document; pdfsig runs in child processes meanwhile."""
    files = work / "pdf"
    files.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        printed: dict[str, Future[str]] = {}
        for index, (name, document) in enumerate(corpus.items()):
            path = files / f"{index:03d}.pdf"
            path.write_bytes(document.pdf)
            printed[name] = pool.submit(_run_pdfsig, path, document.relying.nss)
        in_process = {name: (ours_verdict(document), pyhanko_verdict(document)) for name, document in corpus.items()}
        return {
            name: Observed(ours=mine, pdfsig=pdfsig_verdict(printed[name].result()), pyhanko=theirs)
            for name, (mine, theirs) in in_process.items()
        }


# -- the tests --------------------------------------------------------------------------------------


def test_every_disagreement_says_why_and_no_agreement_does() -> None:
    assert len({case.name for case in CASES}) == len(CASES), "a document has two rows"
    for case in CASES:
        for tool, verdict, why in (
            ("pdfsig", case.pdfsig, case.pdfsig_why),
            ("pyHanko", case.pyhanko, case.pyhanko_why),
        ):
            if verdict is case.ours:
                assert not why, f"{case.name}: {tool} agrees with us, yet the row says why it differs"
            else:
                assert why.strip(), f"{case.name}: {tool} says {verdict} and we say {case.ours}: say why"


def test_the_table_has_a_row_for_every_document(corpus: dict[str, Document]) -> None:
    """Every PDF the validation tests build is compared, and every row names one of them."""
    rows = {case.name for case in CASES}
    assert sorted(set(corpus) - rows) == [], "documents without a row in CASES"
    assert sorted(rows - set(corpus)) == [], "rows in CASES for documents that are no longer built"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_verifier_gives_the_recorded_verdict(case: Case, observed: dict[str, Observed]) -> None:
    seen = observed[case.name]
    actual = (seen.ours.verdict, seen.pdfsig.verdict, seen.pyhanko.verdict)
    assert actual == (case.ours, case.pdfsig, case.pyhanko), (
        f"ours: {seen.ours.verdict} ({seen.ours.details})\n"
        f"pdfsig: {seen.pdfsig.verdict} ({seen.pdfsig.details})\n"
        f"pyHanko: {seen.pyhanko.verdict} ({seen.pyhanko.details})"
    )
