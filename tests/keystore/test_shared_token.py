"""Two processes on one SoftHSM2 token directory (two nodes, or ``--workers N``): a key pair one
process generates is found and used by a process that logged in before it existed, both ways.
DESIGN.md's SoftHSM2 pitfall is about two threads in one process (the keystore's lock serializes
them); separate processes each have their own login and see each other's token objects."""

from __future__ import annotations

import multiprocessing
import os
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, SignatureScheme
from govsign.keystore.pkcs11 import PKCS11KeyStore

from ._shared_token_worker import generate_or_sign


def _in_child(softhsm2_module: str, hsm_pin: str, label: str, *, generate: bool, message: bytes) -> tuple[str, bytes]:
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    process = context.Process(
        target=generate_or_sign,
        args=(os.environ["SOFTHSM2_CONF"], softhsm2_module, hsm_pin, label, generate, message, results),
    )
    process.start()
    try:
        outcome: tuple[str, bytes] = results.get(timeout=120)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    return outcome


def _verify(keystore: PKCS11KeyStore, label: str, signature: bytes, message: bytes) -> None:
    ref = keystore.find_key(label=label, algorithm=KeyAlgorithm.EC_P256)
    assert ref is not None
    public = keystore.public_key(ref)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_a_key_generated_by_another_process_is_used_by_a_logged_in_one(
    keystore: PKCS11KeyStore, softhsm2_module: str, hsm_pin: str
) -> None:
    label = f"test-shared-{secrets.token_hex(4)}"
    keystore.ping()  # this process is logged in before the key exists
    key_id, child_signature = _in_child(softhsm2_module, hsm_pin, label, generate=True, message=b"from the child")
    assert child_signature, key_id
    ref = keystore.find_key(label=label, algorithm=KeyAlgorithm.EC_P256)
    try:
        assert ref is not None and ref.key_id_hex == key_id, "the other process's key is not visible here"
        _verify(keystore, label, child_signature, b"from the child")
        signature = keystore.sign(
            ref, b"from the parent", scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256
        )
        _verify(keystore, label, signature, b"from the parent")
    finally:
        if ref is not None:
            keystore.destroy_key_pair(ref)


def test_a_key_generated_here_is_used_by_another_process(
    keystore: PKCS11KeyStore, softhsm2_module: str, hsm_pin: str
) -> None:
    label = f"test-shared-{secrets.token_hex(4)}"
    ref = keystore.generate_key_pair(label=label, algorithm=KeyAlgorithm.EC_P256)
    try:
        key_id, signature = _in_child(softhsm2_module, hsm_pin, label, generate=False, message=b"child signs")
        assert key_id == ref.key_id_hex, key_id
        _verify(keystore, label, signature, b"child signs")
    finally:
        keystore.destroy_key_pair(ref)
