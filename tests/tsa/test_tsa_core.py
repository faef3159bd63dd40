"""The TSA core alone, with a software key behind the keystore protocol: EC P-384 signs with
SHA-384 (digestAlgorithm, messageDigest and signature), the signature covers the DER SET of the
signed attributes, and the serial source and clock are the injected ones."""

from __future__ import annotations

import datetime as dt
import hashlib

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govsign.clock import FixedClock
from govsign.errors import HSMUnavailableError
from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, KeyRef, SignatureScheme
from govsign.tsa import TimeStampAuthority, TSAPolicy, TSASigner

from .support import query, signed_data, status, tst_info

AT = dt.datetime(2026, 3, 1, 8, 30, 15, 987654, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP384R1())


class SoftwareKeyStore:
    """Signs with KEY, as the HSM would (or fails like an unavailable one)."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls: list[tuple[SignatureScheme, HashAlgorithm]] = []

    def sign(self, ref: KeyRef, message: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm) -> bytes:
        if self.down:
            raise HSMUnavailableError("The HSM is unavailable.")
        self.calls.append((scheme, hash_algorithm))
        return KEY.sign(message, ec.ECDSA(hashes.SHA384()))


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


def _tsa(keystore: SoftwareKeyStore, serials: list[int]) -> TimeStampAuthority:
    return TimeStampAuthority(
        keystore=keystore,
        clock=FixedClock(AT),
        signer=TSASigner(
            key=KeyRef(label="tsa-p384", key_id=b"\x01" * 16, algorithm=KeyAlgorithm.EC_P384),
            certificate_der=_certificate(),
        ),
        policy=TSAPolicy(policy_oid="1.3.6.1.4.1.32473.1.2", accuracy_seconds=3),
        serial_source=serials.pop,
    )


def test_p384_signs_with_sha384_over_the_signed_attributes_set() -> None:
    keystore = SoftwareKeyStore()
    answer = _tsa(keystore, [42]).respond(query(algorithm="sha512", nonce=5))
    assert status(answer) == ("granted", set())
    assert keystore.calls == [(SignatureScheme.ECDSA, HashAlgorithm.SHA384)]
    data = signed_data(answer)
    assert [a["algorithm"].native for a in data["digest_algorithms"]] == ["sha384"]
    signer_info = data["signer_infos"][0]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha384"
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha384_ecdsa"
    attributes = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    tst_der = data["encap_content_info"]["content"].contents
    assert attributes["message_digest"].native == hashlib.sha384(tst_der).digest()
    assert attributes["content_type"].native == "tst_info"
    signed_set = cms.CMSAttributes.load(signer_info["signed_attrs"].untag().dump()).dump()
    assert signed_set[0] == 0x31  # the signature covers the SET, not the [0] IMPLICIT encoding
    KEY.public_key().verify(signer_info["signature"].native, signed_set, ec.ECDSA(hashes.SHA384()))

    info = tst_info(answer)
    assert info["serial_number"].native == 42
    assert info["gen_time"].native == AT.replace(microsecond=0)
    assert info["accuracy"].native == {"seconds": 3, "millis": None, "micros": None}
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha512"


def test_hsm_unavailable_is_system_failure() -> None:
    answer = _tsa(SoftwareKeyStore(down=True), [1]).respond(query())
    assert status(answer) == ("rejection", {"system_failure"})


def test_a_non_positive_serial_is_never_issued() -> None:
    assert status(_tsa(SoftwareKeyStore(), [0]).respond(query())) == ("rejection", {"system_failure"})
