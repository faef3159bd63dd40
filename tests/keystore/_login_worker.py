"""Child process of test_processes: log in to the shared token at the same moment as its siblings."""

from __future__ import annotations

import os
from typing import Any


def open_and_close(conf: str, module: str, label: str, pin: str, rounds: int, barrier: Any, results: Any) -> None:
    """Each round: wait for the siblings, open a keystore (C_OpenSession + C_Login), ping, close."""
    os.environ["SOFTHSM2_CONF"] = conf
    from govsign.errors import GovsignError
    from govsign.keystore.pkcs11 import PKCS11KeyStore

    outcomes = []
    for _ in range(rounds):
        barrier.wait(timeout=60)
        store = PKCS11KeyStore(module_path=module, token_label=label, pin=pin)
        try:
            store.open()
            store.ping()
            outcomes.append("ok")
        except GovsignError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc.message}")
        finally:
            store.close()
    results.put(outcomes)
