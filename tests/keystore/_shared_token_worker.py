"""Child process of test_shared_token: a second process on the same SoftHSM2 token directory."""

from __future__ import annotations

import os
from typing import Any


def generate_or_sign(
    conf: str, module: str, pin: str, label: str, generate: bool, message: bytes, results: Any
) -> None:
    """Log in; generate the key pair ``label`` (``generate``) or find the one another process
    generated; sign ``message`` with it; report (key id, signature) or the error."""
    os.environ["SOFTHSM2_CONF"] = conf
    from govsign.errors import GovsignError
    from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, SignatureScheme
    from govsign.keystore.pkcs11 import PKCS11KeyStore

    store = PKCS11KeyStore(module_path=module, token_label="govsign", pin=pin)
    try:
        store.open()
        if generate:
            ref = store.generate_key_pair(label=label, algorithm=KeyAlgorithm.EC_P256)
        else:
            found = store.find_key(label=label, algorithm=KeyAlgorithm.EC_P256)
            if found is None:
                results.put(("missing", b""))
                return
            ref = found
        signature = store.sign(ref, message, scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256)
        results.put((ref.key_id_hex, signature))
    except GovsignError as exc:
        results.put((f"{type(exc).__name__}: {exc.message}", b""))
    finally:
        store.close()
