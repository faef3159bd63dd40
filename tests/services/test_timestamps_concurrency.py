"""Regression: the TSA answers from many threads at once. Before, every reply re-encoded in place
(``dump(force=True)``) the signer's cached, shared signingCertificateV2, whose issuer is the
parsed TSA certificate's own Name object; under 4 concurrent requests ~2% of the replies were
``rejection / systemFailure`` ("Insufficient data"). Every reply must be granted and verify."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.tsa import TimeStampAuthority
from helpers.keys import SoftwareKeyStore
from helpers.tsa import DOCUMENT, KEY, query, signed_data, software_tsa, status, tst_info

THREADS = 8
PER_THREAD = 4


def _check(answer: bytes, nonce: int, verify: object) -> int:
    """The serial of a granted reply that answers ``nonce`` and whose signature ``verify`` accepts."""
    assert status(answer) == ("granted", set()), answer.hex()
    info = tst_info(answer)
    assert info["nonce"].native == nonce
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DOCUMENT).digest()
    signer_info = signed_data(answer)["signer_infos"][0]
    tst_der = signed_data(answer)["encap_content_info"]["content"].contents
    digests = [a["values"][0].native for a in signer_info["signed_attrs"] if a["type"].native == "message_digest"]
    assert digests == [hashlib.new(signer_info["digest_algorithm"]["algorithm"].native, tst_der).digest()]
    signed_set = cms.CMSAttributes.load(signer_info["signed_attrs"].untag().dump()).dump()
    verify(signer_info["signature"].native, signed_set)  # type: ignore[operator]
    return int(info["serial_number"].native)


def _hammer(answer: object, verify: object) -> None:
    start = threading.Barrier(THREADS)

    def worker(index: int) -> list[int]:
        start.wait()
        nonces = [index * 1000 + n + 1 for n in range(PER_THREAD)]
        answers = [answer(query(nonce=nonce, cert_req=nonce % 2 == 0)) for nonce in nonces]  # type: ignore[operator]
        return [_check(der, nonce, verify) for der, nonce in zip(answers, nonces, strict=True)]

    with ThreadPoolExecutor(THREADS) as pool:
        serials = [serial for serials in pool.map(worker, range(THREADS)) for serial in serials]
    assert len(serials) == THREADS * PER_THREAD == len(set(serials))


def test_threads_through_the_runtime_and_the_hsm(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    public_key = x509.load_der_x509_certificate(hierarchy.tsa.certificate_der).public_key()
    algorithm = hashes.SHA256()

    def verify(signature: bytes, signed: bytes) -> None:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            algorithm_of_curve = hashes.SHA384() if public_key.curve.key_size == 384 else hashes.SHA256()
            public_key.verify(signature, signed, ec.ECDSA(algorithm_of_curve))

    initialized_services.timestamps.authority()  # loaded once, then shared by every thread
    _hammer(initialized_services.timestamps.answer, verify)


def test_threads_on_one_authority_without_a_lock() -> None:
    """A software key store takes no lock: the threads really interleave in the core."""
    serial = iter(range(1, 1 + 2 * THREADS * PER_THREAD))
    lock = threading.Lock()

    def next_serial() -> int:
        with lock:
            return next(serial)

    tsa: TimeStampAuthority = software_tsa(SoftwareKeyStore(), [])
    tsa._serial_source = next_serial

    def verify(signature: bytes, signed: bytes) -> None:
        KEY.public_key().verify(signature, signed, ec.ECDSA(hashes.SHA384()))

    _hammer(tsa.respond, verify)
