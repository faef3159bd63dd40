"""The TSA core alone, with a software key behind the keystore protocol: EC P-384 signs with
SHA-384 (digestAlgorithm, messageDigest and signature), the signature covers the DER SET of the
signed attributes, and the serial source and clock are the injected ones."""

from __future__ import annotations

import hashlib

from asn1crypto import cms
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from govsign.keystore.api import HashAlgorithm, SignatureScheme
from helpers.keys import SoftwareKeyStore
from helpers.tsa import AT, KEY, query, signed_data, software_tsa, status, tst_info


def test_p384_signs_with_sha384_over_the_signed_attributes_set() -> None:
    keystore = SoftwareKeyStore()
    answer = software_tsa(keystore, [42]).respond(query(algorithm="sha512", nonce=5))
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
    answer = software_tsa(SoftwareKeyStore(down=True), [1]).respond(query())
    assert status(answer) == ("rejection", {"system_failure"})


def test_a_non_positive_serial_is_never_issued() -> None:
    assert status(software_tsa(SoftwareKeyStore(), [0]).respond(query())) == ("rejection", {"system_failure"})


def test_a_nonce_over_32_octets_is_a_bad_request_and_not_echoed() -> None:
    """The fault campaign's 10,000-byte nonce was granted and echoed; 32 octets are the most."""
    keystore = SoftwareKeyStore()
    tsa = software_tsa(keystore, [7, 8, 9])
    answer = tsa.respond(query(nonce=(1 << (10_000 * 8)) - 1))
    assert status(answer) == ("rejection", {"bad_request"})
    assert len(answer) < 1000
    assert status(tsa.respond(query(nonce=(1 << (33 * 8 - 1))))) == ("rejection", {"bad_request"})
    longest = (1 << (32 * 8)) - 1  # 32 octets of value (33 in DER, with the leading zero)
    granted = tsa.respond(query(nonce=longest))
    assert status(granted) == ("granted", set())
    assert tst_info(granted)["nonce"].native == longest
    assert keystore.calls == [(SignatureScheme.ECDSA, HashAlgorithm.SHA384)]
