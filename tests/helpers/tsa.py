"""Helpers of the TSA tests: requests built with asn1crypto or `openssl ts -query`, replies
read with asn1crypto, and the PEM files `openssl ts -verify` needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govsign.clock import FixedClock
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.hierarchy import HierarchyResult
from govsign.tsa import TimeStampAuthority, TSAPolicy, TSASigner
from govsign.tsa.authority import TimeStampResponse
from helpers.keys import SoftwareKeyStore

DOCUMENT = b"Quyet dinh so 15/2025 - a document to time-stamp.\n"


def query(
    *,
    algorithm: str = "sha256",
    digest: bytes | None = None,
    nonce: int | None = None,
    cert_req: bool = False,
    policy: str | None = None,
    version: str = "v1",
) -> bytes:
    """A DER TimeStampReq over DOCUMENT (or the given digest)."""
    if digest is None:
        digest = (
            hashlib.new(algorithm, DOCUMENT).digest() if algorithm in hashlib.algorithms_available else b"\x01" * 32
        )
    fields: dict[str, Any] = {
        "version": version,
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    return bytes(tsp.TimeStampReq(fields).dump())


def reply(der: bytes) -> TimeStampResponse:
    """The reply parsed strictly (one DER structure, nothing after it)."""
    parsed = TimeStampResponse.load(der, strict=True)
    parsed.native  # noqa: B018 - parse everything
    return parsed


def status(der: bytes) -> tuple[str, set[str]]:
    """(PKIStatus, PKIFailureInfo names) of a reply."""
    info = reply(der)["status"]
    fail_info = info["fail_info"].native
    return info["status"].native, set(fail_info) if fail_info else set()


def signed_data(der: bytes) -> cms.SignedData:
    return reply(der)["time_stamp_token"]["content"]


def tst_info(der: bytes) -> tsp.TSTInfo:
    return signed_data(der)["encap_content_info"]["content"].parsed


def pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def write_chain(directory: Path, hierarchy: HierarchyResult) -> tuple[Path, Path]:
    """(chain.pem with the issuing CA and the root, tsa.pem with the TSA certificate)."""
    chain = directory / "chain.pem"
    chain.write_bytes(pem(hierarchy.issuing.certificate_der) + pem(hierarchy.root.certificate_der))
    tsa = directory / "tsa.pem"
    tsa.write_bytes(pem(hierarchy.tsa.certificate_der))
    return chain, tsa


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30, check=False)


# -- a TSA core with a software key ----------------------------------------------------------

AT = dt.datetime(2026, 3, 1, 8, 30, 15, 987654, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP384R1())


def _certificate() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSU P-384")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(0x1234)
        .not_valid_before(AT - dt.timedelta(days=1))
        .not_valid_after(AT + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(KEY, hashes.SHA384())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def software_tsa(keystore: SoftwareKeyStore, serials: list[int]) -> TimeStampAuthority:
    """A TSA core at AT with the software P-384 key KEY (registered in ``keystore``), taking its
    serials from ``serials``."""
    return TimeStampAuthority(
        keystore=keystore,
        clock=FixedClock(AT),
        signer=TSASigner(
            key=keystore.add(KEY, label="tsa-p384", algorithm=KeyAlgorithm.EC_P384),
            certificate_der=_certificate(),
        ),
        policy=TSAPolicy(policy_oid="1.3.6.1.4.1.32473.1.2", accuracy_seconds=3),
        serial_source=serials.pop,
    )
