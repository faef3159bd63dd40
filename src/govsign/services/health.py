"""Readiness: the dependencies without which the service cannot answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from govsign.keystore.api import KeyStore
from govsign.storage.engine import Database


class Health:
    """The checks of readiness, by name; each raises GovsignError when its dependency is down."""

    def __init__(self, *, database: Database, keystore: KeyStore) -> None:
        self.checks: Mapping[str, Callable[[], None]] = {"database": database.check, "hsm": keystore.ping}
