"""The HSM token as an operator inspects it: the module, the token and the private keys govsign
uses (never any key material)."""

from __future__ import annotations

from govsign.keystore.api import KeyInfo, KeyStore, TokenInfo


class HSMInventory:
    """What is on the token."""

    def __init__(self, *, keystore: KeyStore) -> None:
        self._keystore = keystore

    def token(self) -> TokenInfo:
        return self._keystore.token_info()

    def private_keys(self) -> list[KeyInfo]:
        return self._keystore.list_private_keys()
