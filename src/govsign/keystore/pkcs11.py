"""The only module that talks to a PKCS#11 library.

Rules measured on these machines (DESIGN.md, "Pitfalls"):

* python-pkcs11 initialises the module without OS locking, so SoftHSM2 switches its own locks
  off and two threads inside it at once crash the process. Every call into the module goes
  through one process-wide lock; scale with worker processes, not threads.
* One login per token per process: a second C_Login raises UserAlreadyLoggedIn, and a login per
  operation would add a whole login to every signature. We keep one logged-in read/write session per process and reuse it; since
  all calls are serialized anyway, more sessions would buy nothing.
* SoftHSM2 2.6 has no CKM_ECDSA_SHA256: ECDSA hashes in software, signs with CKM_ECDSA and
  DER-encodes r||s.

Errors from the module are wrapped into :class:`HSMUnavailableError` (or
:class:`HSMLoginError` / :class:`ConfigurationError` for a wrong PIN or a missing token at
start-up) here, so no ``pkcs11`` exception escapes this module.

Outages end by themselves. An error that is not the request's own fault (a broken session, a
token that went away, a module that was finalized) is answered with one recovery at once: a
fresh session and login, re-initialising the module (C_Finalize + C_Initialize) when a fresh
session alone does not do, and the operation once more. If that fails the keystore is *down*:
calls are refused at once with :class:`HSMUnavailableError`, without touching the module, and
only a probe (a call, :meth:`PKCS11KeyStore.ping`, or the service's background watch) tries
again, at most once every :data:`PROBE_INTERVAL_SECONDS`. The first probe that logs in brings
every operation back. SoftHSM2 keeps answering an open session (random bytes, even a new
C_OpenSession) after its token directory is gone, and keeps failing after it comes back until
the module is re-initialised: the readiness check therefore looks for the token in the slot
list (C_GetSlotList + C_GetTokenInfo), which fails as soon as the token is gone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import pkcs11
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11errors
from pkcs11.mechanisms import MGF
from pkcs11.util.ec import encode_ecdsa_signature, encode_named_curve_parameters

from govsign.errors import ConfigurationError, GovsignError, HSMLoginError, HSMUnavailableError
from govsign.keystore.api import (
    HashAlgorithm,
    KeyAlgorithm,
    KeyInfo,
    KeyRef,
    PublicKey,
    SecretRef,
    SignatureScheme,
    TokenInfo,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Every call into any PKCS#11 module in this process holds this lock.
MODULE_LOCK = threading.RLock()

_RSA_PKCS1_MECHANISMS = {
    HashAlgorithm.SHA256: Mechanism.SHA256_RSA_PKCS,
    HashAlgorithm.SHA384: Mechanism.SHA384_RSA_PKCS,
    HashAlgorithm.SHA512: Mechanism.SHA512_RSA_PKCS,
}
_RSA_PSS_MECHANISMS = {
    HashAlgorithm.SHA256: (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.SHA256, MGF.SHA256),
    HashAlgorithm.SHA384: (Mechanism.SHA384_RSA_PKCS_PSS, Mechanism.SHA384, MGF.SHA384),
    HashAlgorithm.SHA512: (Mechanism.SHA512_RSA_PKCS_PSS, Mechanism.SHA512, MGF.SHA512),
}
_DIGEST_INFO_PREFIX = {
    HashAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    HashAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    HashAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}
_CURVES: dict[KeyAlgorithm, ec.EllipticCurve] = {
    KeyAlgorithm.EC_P256: ec.SECP256R1(),
    KeyAlgorithm.EC_P384: ec.SECP384R1(),
}

#: Counters of HSM operations and failures, read by the metrics endpoint.
OPERATION_COUNTS: dict[str, int] = {}
ERROR_COUNTS: dict[str, int] = {}

_loaded_libraries: dict[str, Any] = {}

#: SHA-256 of the PIN that logged in, per (module, token label), for this process.
_LOGGED_IN: dict[tuple[str, str], bytes] = {}

_OPEN_ATTEMPTS = 8
#: Tries of a reconnection or a token check before the keystore is said to be down; from the
#: second failure on, the module is re-initialised (see ``_open_locked``).
_RECONNECT_ATTEMPTS = 3

#: While the keystore is down, the module is tried again at most this often.
PROBE_INTERVAL_SECONDS = 1.0

#: What a refused call says while the keystore is down (no module internals).
DOWN_MESSAGE = "The HSM is not available right now; try again in a few seconds."

#: Errors that are the request's own fault (a bad mechanism, template or input): the token is
#: fine, so they never mark the keystore down.
_REQUEST_ERRORS: tuple[type[p11errors.PKCS11Error], ...] = (
    p11errors.ArgumentsBad,
    p11errors.AttributeReadOnly,
    p11errors.AttributeSensitive,
    p11errors.AttributeTypeInvalid,
    p11errors.AttributeValueInvalid,
    p11errors.DataInvalid,
    p11errors.DataLenRange,
    p11errors.DomainParamsInvalid,
    p11errors.FunctionNotSupported,
    p11errors.KeySizeRange,
    p11errors.KeyTypeInconsistent,
    p11errors.KeyUnextractable,
    p11errors.MechanismInvalid,
    p11errors.MechanismParamInvalid,
    p11errors.MultipleObjectsReturned,
    p11errors.SignatureInvalid,
    p11errors.SignatureLenRange,
    p11errors.TemplateIncomplete,
    p11errors.TemplateInconsistent,
)


class _TransientOpenError(Exception):
    """An open that may succeed when tried again; ``final`` is raised if it never does."""

    def __init__(self, final: Exception) -> None:
        super().__init__(str(final))
        self.final = final


class _Outage:
    """Why an attempt failed in a way that looks like an outage (the error class, never text)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _load_library(path: str) -> Any:
    """python-pkcs11 allows one library object per path per process; keep it."""
    with MODULE_LOCK:
        lib = _loaded_libraries.get(path)
        if lib is None:
            lib = pkcs11.lib(path)
            _loaded_libraries[path] = lib
        return lib


class PKCS11KeyStore:
    """A :class:`govsign.keystore.api.KeyStore` on one PKCS#11 token."""

    def __init__(self, *, module_path: str, token_label: str, pin: str) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._pin = pin
        self._session: Any = None
        self._token: Any = None
        self._lib: Any = None
        self._handles: dict[tuple[bytes, ObjectClass], Any] = {}
        self._closed = False
        self._opened = False
        #: monotonic time the keystore was marked down; None while it is up
        self._down_since: float | None = None
        #: monotonic time of the last probe (or of the failure that marked it down)
        self._last_probe = 0.0
        #: how many times the keystore went down and came back, for the outage watch
        self._outages = 0
        #: the token refused the PIN on a reconnection: no more logins are tried
        self._pin_refused = False

    # -- session management -----------------------------------------------------------------

    def open(self) -> None:
        """Load the module, find the token and log in; raises one-sentence errors.

        At start-up, transient failures (SoftHSM2's multi-process login race) are retried a few
        times; after that, failures mark the keystore down and probes bring it back."""
        with MODULE_LOCK:
            self._closed = False
            self._open_locked(attempts=_OPEN_ATTEMPTS)
            self._opened = True

    def _open_locked(self, attempts: int = 1) -> None:
        if self._session is not None:
            return
        if not os.path.isfile(self._module_path):
            raise ConfigurationError(f"GOVSIGN_PKCS11_MODULE names {self._module_path}, which does not exist.")
        try:
            self._lib = _load_library(self._module_path)
        except (OSError, RuntimeError, p11errors.PKCS11Error) as exc:
            raise ConfigurationError(
                f"GOVSIGN_PKCS11_MODULE names {self._module_path}, which is not a usable "
                f"PKCS#11 library ({type(exc).__name__})."
            ) from None
        # SoftHSM2 answers C_GetTokenInfo / C_Login with CKR_GENERAL_ERROR or a missing token now
        # and then while other processes log in to the same token store at the same moment (the
        # race of SoftHSMv2 issue 757): retry a few times with a random pause before giving up.
        if self._closed:
            raise HSMUnavailableError("The HSM session of this process was closed.")
        for attempt in range(attempts):
            try:
                self._open_session()
                return
            except _TransientOpenError as exc:
                if attempt == attempts - 1:
                    raise exc.final from None
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not crypto
                if attempt >= 1:
                    # SoftHSM2 caches the token's state as it read it; a fresh C_Initialize
                    # makes it read the token store again. Other keystores of this process
                    # reopen their sessions on their next call.
                    self._reinitialize_locked()

    def _reinitialize_locked(self) -> None:
        """C_Finalize and C_Initialize: the module forgets every session and login of this
        process and reads its token store again. Failing, it stays finalized; the next
        connection initialises it."""
        with suppress(p11errors.PKCS11Error):
            self._lib.finalize()
        with suppress(p11errors.PKCS11Error):
            self._lib.initialize()

    def _open_session(self) -> None:
        # once open, failures are the probes of an outage: logged once, when it begins
        level = logging.DEBUG if self._opened else logging.WARNING
        if not self._lib.initialized:
            try:
                self._lib.initialize()
            except p11errors.PKCS11Error as exc:
                raise _TransientOpenError(
                    HSMUnavailableError(_logged("The PKCS#11 module could not be initialised.", exc, level))
                ) from None
        try:
            self._token = self._lib.get_token(token_label=self._token_label)
        except p11errors.NoSuchToken:
            missing = f"No token labelled '{self._token_label}' (GOVSIGN_HSM_TOKEN_LABEL) is in the PKCS#11 module"
            if self._opened:  # it was there: an outage, not a configuration to fix
                raise _TransientOpenError(
                    HSMUnavailableError(_logged(missing + ".", p11errors.NoSuchToken(), level))
                ) from None
            raise _TransientOpenError(
                ConfigurationError(missing + "; run 'govsign init' or create the token.")
            ) from None
        except p11errors.MultipleTokensReturned:
            raise ConfigurationError(
                f"More than one token is labelled '{self._token_label}' (GOVSIGN_HSM_TOKEN_LABEL)."
            ) from None
        except p11errors.PKCS11Error as exc:
            raise _TransientOpenError(
                HSMUnavailableError(_logged("The PKCS#11 module could not list its tokens.", exc, level))
            ) from None
        login_key = (self._module_path, self._token_label)
        pin_digest = hashlib.sha256(self._pin.encode("utf-8")).digest()
        try:
            self._session = self._token.open(rw=True, user_pin=self._pin)
            _LOGGED_IN[login_key] = pin_digest
        except p11errors.UserAlreadyLoggedIn:
            # The login state is shared by all sessions of this process. Accept it only for the
            # PIN that logged in, so a wrong PIN is never let in behind another keystore's login.
            if not hmac.compare_digest(_LOGGED_IN.get(login_key, b""), pin_digest):
                raise HSMLoginError(
                    f"The HSM token '{self._token_label}' is logged in with another PIN in this process; "
                    "the PIN given in GOVSIGN_HSM_PIN or GOVSIGN_HSM_PIN_FILE does not match it."
                ) from None
            try:
                self._session = self._token.open(rw=True)
            except p11errors.PKCS11Error as exc:
                raise _TransientOpenError(
                    HSMUnavailableError(
                        _logged(f"Could not open a session on HSM token '{self._token_label}'.", exc, level)
                    )
                ) from None
        except (p11errors.PinIncorrect, p11errors.PinInvalid, p11errors.PinLenRange):
            raise HSMLoginError(
                f"The HSM token '{self._token_label}' rejected the PIN given in GOVSIGN_HSM_PIN "
                "or GOVSIGN_HSM_PIN_FILE."
            ) from None
        except p11errors.PinLocked:
            raise HSMLoginError(f"The user PIN of HSM token '{self._token_label}' is locked.") from None
        except p11errors.PKCS11Error as exc:
            raise _TransientOpenError(
                HSMUnavailableError(
                    _logged(f"Could not open a session on HSM token '{self._token_label}'.", exc, level)
                )
            ) from None
        self._handles.clear()

    def _drop_session_locked(self) -> None:
        if self._session is not None:
            with suppress(p11errors.PKCS11Error):
                self._session.close()
        self._session = None
        self._handles.clear()

    def close(self) -> None:
        with MODULE_LOCK:
            self._closed = True
            self._drop_session_locked()

    # -- outages ----------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the keystore is down (cached state: for choosing a path, never for
        readiness, which :meth:`ping` checks for real)."""
        return self._down_since is None and not self._closed

    @property
    def outages(self) -> int:
        """How many times this keystore went down (it is up again when :attr:`available`)."""
        return self._outages

    def _reconnect_locked(self) -> bool:
        """A fresh session and login, re-initialising the module when fresh sessions alone do
        not do (SoftHSM2 goes on failing after its token directory is back until it is
        re-initialised); True when it worked (and the keystore is up again)."""
        self._last_probe = time.monotonic()
        if self._pin_refused:
            return False
        self._drop_session_locked()
        try:
            self._open_locked(attempts=_RECONNECT_ATTEMPTS)
        except HSMLoginError as exc:
            # never tried again: a probe a second with a PIN the token refuses would lock it
            self._pin_refused = True
            log.error("%s The HSM stays unavailable until the PIN is fixed and the service restarted.", exc.message)
            return False
        except GovsignError as exc:
            log.debug("HSM probe failed: %s", exc.message)
            return False
        self._mark_up_locked()
        return True

    def _probe_due_locked(self) -> bool:
        return time.monotonic() - self._last_probe >= PROBE_INTERVAL_SECONDS

    def _mark_down_locked(self, reason: str) -> None:
        self._drop_session_locked()
        self._last_probe = time.monotonic()
        if self._down_since is None:
            self._down_since = self._last_probe
            self._outages += 1
            log.warning(
                "The HSM token '%s' is unavailable (%s); probing it every %.0f s.",
                self._token_label,
                reason,
                PROBE_INTERVAL_SECONDS,
            )

    def _mark_up_locked(self) -> None:
        if self._down_since is not None:
            log.warning(
                "The HSM token '%s' is available again after %.1f s.",
                self._token_label,
                time.monotonic() - self._down_since,
            )
            self._down_since = None

    def _token_listed_locked(self) -> bool:
        """True when the module lists our token right now (C_GetSlotList + C_GetTokenInfo fail
        as soon as SoftHSM2's token directory is gone, unlike the open session)."""
        if self._lib is None or not self._lib.initialized:
            return False
        for attempt in range(_RECONNECT_ATTEMPTS):
            try:
                self._lib.get_token(token_label=self._token_label)
                return True
            except p11errors.NoSuchToken:
                return False
            except p11errors.PKCS11Error:
                # CKR_GENERAL_ERROR: the token is gone, or other processes log in right now
                # (SoftHSMv2 issue 757): look again after a short pause before saying it is gone
                if attempt < _RECONNECT_ATTEMPTS - 1:
                    time.sleep(random.uniform(0.002, 0.02))  # noqa: S311 - jitter, not crypto
        return False

    def probe(self) -> bool:
        """Try the token when it is down and a probe is due (at most once a second); True when
        the keystore is up afterwards. Cheap while it is up: nothing is called."""
        with MODULE_LOCK:
            if self._closed:
                return False
            if self._down_since is None:
                return True
            return self._probe_due_locked() and self._reconnect_locked()

    def _call(self, operation: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(session)`` under the module lock: refused at once while the keystore is down
        (unless a probe is due and works); an outage-like error gets one reconnection and one
        more try, then marks the keystore down."""
        with MODULE_LOCK:
            OPERATION_COUNTS[operation] = OPERATION_COUNTS.get(operation, 0) + 1
            try:
                if self._closed:
                    raise HSMUnavailableError("The HSM session of this process was closed.")
                if self._down_since is not None and not (self._probe_due_locked() and self._reconnect_locked()):
                    raise HSMUnavailableError(DOWN_MESSAGE)
                for attempt in (1, 2):
                    outcome = self._attempt(operation, fn)
                    if not isinstance(outcome, _Outage):
                        return outcome
                    if attempt == 1 and self._reconnect_locked():
                        continue
                    log.warning("PKCS#11 %s failed: %s", operation, outcome.reason)
                    self._mark_down_locked(outcome.reason)
                    raise HSMUnavailableError(DOWN_MESSAGE)
                raise AssertionError("unreachable")
            except GovsignError:
                ERROR_COUNTS[operation] = ERROR_COUNTS.get(operation, 0) + 1
                raise

    def _attempt(self, operation: str, fn: Callable[[Any], T]) -> T | _Outage:
        """``fn(session)``, or an :class:`_Outage` when the failure looks like one; errors that
        are the request's own (or a key that is not there while the token is) are raised."""
        try:
            self._open_locked()
        except GovsignError as exc:
            if not self._opened:
                raise
            return _Outage(type(exc).__name__)
        try:
            return fn(self._session)
        except HSMUnavailableError:
            # raised by fn: a key or secret not found. When the token itself is gone it is an
            # outage; otherwise the message says what is missing.
            if self._token_listed_locked():
                raise
            return _Outage("token not listed")
        except _REQUEST_ERRORS as exc:
            log.warning("PKCS#11 %s failed: %s", operation, type(exc).__name__)
            raise HSMUnavailableError(f"The HSM could not complete the {operation} operation.") from None
        except p11errors.PKCS11Error as exc:
            return _Outage(type(exc).__name__)

    # -- keys -------------------------------------------------------------------------------

    def generate_key_pair(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        key_id = os.urandom(16)
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }

        def generate(session: Any) -> None:
            if algorithm.is_rsa:
                session.generate_keypair(
                    KeyType.RSA,
                    algorithm.rsa_bits,
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    private_template=private_template,
                    public_template={**public_template, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                )
            else:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(algorithm.curve_name)},
                    local=True,
                )
                params.generate_keypair(
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    private_template=private_template,
                    public_template=public_template,
                )

        self._call("generate", generate)
        return KeyRef(label=label, key_id=key_id, algorithm=algorithm)

    def find_key(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef | None:
        key_type = KeyType.RSA if algorithm.is_rsa else KeyType.EC

        def find(session: Any) -> KeyRef | None:
            found = list(
                session.get_objects(
                    {
                        Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                        Attribute.LABEL: label,
                        Attribute.KEY_TYPE: key_type,
                    }
                )
            )
            if not found:
                return None
            if len(found) > 1:
                raise HSMUnavailableError(f"More than one private key on the token is labelled '{label}'.")
            return KeyRef(label=label, key_id=bytes(found[0][Attribute.ID]), algorithm=algorithm)

        return self._call("find", find)

    def find_keys(self, *, label: str, algorithm: KeyAlgorithm) -> list[KeyRef]:
        key_type = KeyType.RSA if algorithm.is_rsa else KeyType.EC

        def find(session: Any) -> list[KeyRef]:
            found = session.get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label, Attribute.KEY_TYPE: key_type}
            )
            ids = sorted(bytes(obj[Attribute.ID]) for obj in found)
            return [KeyRef(label=label, key_id=key_id, algorithm=algorithm) for key_id in ids]

        return self._call("find", find)

    def _object(self, session: Any, ref: KeyRef, object_class: ObjectClass) -> Any:
        cached = self._handles.get((ref.key_id, object_class))
        if cached is not None:
            return cached
        found = list(session.get_objects({Attribute.CLASS: object_class, Attribute.ID: ref.key_id}))
        if len(found) != 1:
            raise HSMUnavailableError(f"The HSM holds {len(found)} keys with the id of '{ref.label}', expected one.")
        self._handles[(ref.key_id, object_class)] = found[0]
        return found[0]

    def public_key(self, ref: KeyRef) -> PublicKey:
        def read(session: Any) -> PublicKey:
            public = self._object(session, ref, ObjectClass.PUBLIC_KEY)
            if ref.algorithm.is_rsa:
                modulus = int.from_bytes(public[Attribute.MODULUS], "big")
                exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
                return rsa.RSAPublicNumbers(exponent, modulus).public_key()
            point = OctetString.load(bytes(public[Attribute.EC_POINT])).native
            return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[ref.algorithm], point)

        return self._call("read-public-key", read)

    def sign(self, ref: KeyRef, message: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm) -> bytes:
        if scheme is SignatureScheme.ECDSA:
            digest = hashlib.new(hash_algorithm.value, message).digest()
            return self.sign_digest(ref, digest, scheme=scheme, hash_algorithm=hash_algorithm)
        _check_scheme(ref, scheme)

        def sign(session: Any) -> bytes:
            private = self._object(session, ref, ObjectClass.PRIVATE_KEY)
            if scheme is SignatureScheme.RSA_PKCS1V15:
                return bytes(private.sign(message, mechanism=_RSA_PKCS1_MECHANISMS[hash_algorithm]))
            mechanism, hash_mechanism, mgf = _RSA_PSS_MECHANISMS[hash_algorithm]
            return bytes(
                private.sign(
                    message,
                    mechanism=mechanism,
                    mechanism_param=(hash_mechanism, mgf, hash_algorithm.digest_size),
                )
            )

        return self._call("sign", sign)

    def sign_digest(
        self, ref: KeyRef, digest: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm
    ) -> bytes:
        if len(digest) != hash_algorithm.digest_size:
            raise ValueError(f"a {hash_algorithm.value} digest is {hash_algorithm.digest_size} bytes")
        _check_scheme(ref, scheme)

        def sign(session: Any) -> bytes:
            private = self._object(session, ref, ObjectClass.PRIVATE_KEY)
            if scheme is SignatureScheme.ECDSA:
                raw = bytes(private.sign(digest, mechanism=Mechanism.ECDSA))
                return bytes(encode_ecdsa_signature(raw))
            if scheme is SignatureScheme.RSA_PKCS1V15:
                return bytes(private.sign(_DIGEST_INFO_PREFIX[hash_algorithm] + digest, mechanism=Mechanism.RSA_PKCS))
            _, hash_mechanism, mgf = _RSA_PSS_MECHANISMS[hash_algorithm]
            return bytes(
                private.sign(
                    digest,
                    mechanism=Mechanism.RSA_PKCS_PSS,
                    mechanism_param=(hash_mechanism, mgf, hash_algorithm.digest_size),
                )
            )

        return self._call("sign", sign)

    # -- HMAC secrets (second factors) --------------------------------------------------------

    def import_hmac_secret(self, *, label: str, secret: bytes) -> SecretRef:
        """Create a generic secret usable only for signing (HMAC), sensitive and not extractable:
        after this call the secret exists in the clear nowhere but in the caller's hands."""
        key_id = os.urandom(16)
        template = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.VALUE: bytes(secret),
            Attribute.LABEL: label,
            Attribute.ID: key_id,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: False,
            Attribute.ENCRYPT: False,
            Attribute.DECRYPT: False,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        self._call("import-secret", lambda session: session.create_object(template))
        return SecretRef(label=label, key_id=key_id)

    def hmac_sha1(self, ref: SecretRef, message: bytes) -> bytes:
        def compute(session: Any) -> bytes:
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: ref.key_id}))
            if len(found) != 1:
                raise HSMUnavailableError(
                    f"The HSM holds {len(found)} secrets with the id of '{ref.label}', expected one."
                )
            return bytes(found[0].sign(message, mechanism=Mechanism.SHA_1_HMAC))

        return self._call("hmac", compute)

    def generate_hmac_secret(self, *, label: str) -> SecretRef:
        """Generate a 256-bit generic secret on the token, usable only for signing (HMAC),
        sensitive and never extractable (CKM_GENERIC_SECRET_KEY_GEN: the value is born inside)."""
        key_id = os.urandom(16)
        template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: False,
            Attribute.ENCRYPT: False,
            Attribute.DECRYPT: False,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }

        def generate(session: Any) -> None:
            session.generate_key(
                KeyType.GENERIC_SECRET,
                256,
                id=key_id,
                label=label,
                store=True,
                mechanism=Mechanism.GENERIC_SECRET_KEY_GEN,
                template=template,
            )

        self._call("generate-secret", generate)
        return SecretRef(label=label, key_id=key_id)

    def hmac_sha256(self, ref: SecretRef, message: bytes) -> bytes:
        def compute(session: Any) -> bytes:
            secret = self._handles.get((ref.key_id, ObjectClass.SECRET_KEY))
            if secret is None:
                found = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: ref.key_id}))
                if len(found) != 1:
                    raise HSMUnavailableError(
                        f"The HSM holds {len(found)} secrets with the id of '{ref.label}', expected one."
                    )
                secret = self._handles[(ref.key_id, ObjectClass.SECRET_KEY)] = found[0]
            return bytes(secret.sign(message, mechanism=Mechanism.SHA256_HMAC))

        return self._call("hmac", compute)

    def destroy_secret(self, ref: SecretRef) -> None:
        def destroy(session: Any) -> None:
            for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: ref.key_id})):
                obj.destroy()
            self._handles.pop((ref.key_id, ObjectClass.SECRET_KEY), None)

        self._call("destroy-secret", destroy)

    def destroy_key_pair(self, ref: KeyRef) -> None:
        def destroy(session: Any) -> None:
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in list(session.get_objects({Attribute.CLASS: object_class, Attribute.ID: ref.key_id})):
                    obj.destroy()
                self._handles.pop((ref.key_id, object_class), None)

        self._call("destroy", destroy)

    def list_private_keys(self) -> list[KeyInfo]:
        def list_keys(session: Any) -> list[KeyInfo]:
            infos = []
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
                attrs = obj.get_attributes(
                    [
                        Attribute.LABEL,
                        Attribute.ID,
                        Attribute.KEY_TYPE,
                        Attribute.SENSITIVE,
                        Attribute.EXTRACTABLE,
                        Attribute.NEVER_EXTRACTABLE,
                        Attribute.LOCAL,
                    ]
                )
                algorithm = _algorithm_of(obj, attrs[Attribute.KEY_TYPE])
                if algorithm is None:
                    log.info("skipping private key '%s': not a type govsign uses", attrs[Attribute.LABEL])
                    continue
                infos.append(
                    KeyInfo(
                        ref=KeyRef(
                            label=str(attrs[Attribute.LABEL]),
                            key_id=bytes(attrs[Attribute.ID]),
                            algorithm=algorithm,
                        ),
                        sensitive=bool(attrs[Attribute.SENSITIVE]),
                        extractable=bool(attrs[Attribute.EXTRACTABLE]),
                        never_extractable=bool(attrs[Attribute.NEVER_EXTRACTABLE]),
                        local=bool(attrs[Attribute.LOCAL]),
                    )
                )
            return infos

        return self._call("list", list_keys)

    def token_info(self) -> TokenInfo:
        keys = self.list_private_keys()

        def info(session: Any) -> TokenInfo:
            lib = self._lib
            version = lib.library_version
            return TokenInfo(
                module_path=self._module_path,
                library_description=str(lib.library_description).strip(),
                library_version=f"{version[0]}.{version[1]}",
                token_label=str(self._token.label).strip(),
                token_model=str(self._token.model).strip(),
                token_manufacturer=str(self._token.manufacturer_id).strip(),
                token_serial=_text(self._token.serial),
                private_key_count=len(keys),
            )

        return self._call("info", info)

    def ping(self) -> None:
        """Raise :class:`HSMUnavailableError` unless the token is there right now: the module
        must list it (C_GetSlotList + C_GetTokenInfo fail as soon as SoftHSM2's token directory
        is gone, while the open session still answers), and while the keystore is down a probe
        (at most once a second) must log in again."""
        with MODULE_LOCK:
            OPERATION_COUNTS["ping"] = OPERATION_COUNTS.get("ping", 0) + 1
            if self._closed:
                raise HSMUnavailableError("The HSM session of this process was closed.")
            if self._down_since is None:
                if self._session is not None and self._token_listed_locked():
                    return
                if self._reconnect_locked():  # a finalized module or a stale slot list
                    return
                self._mark_down_locked("token not listed")
            elif self._probe_due_locked() and self._reconnect_locked():
                return
            ERROR_COUNTS["ping"] = ERROR_COUNTS.get("ping", 0) + 1
            raise HSMUnavailableError(DOWN_MESSAGE)

    @contextmanager
    def held(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the HSM across several calls (the module is called by one thread at a time).

        With ``wait=False`` it yields False at once, holding nothing, when another thread is
        using the HSM: a caller on an event loop then moves its work to a worker thread instead
        of blocking the loop."""
        if not MODULE_LOCK.acquire(blocking=wait):
            yield False
            return
        try:
            yield True
        finally:
            MODULE_LOCK.release()


def _logged(message: str, exc: Exception, level: int = logging.WARNING) -> str:
    """The message for callers; the PKCS#11 error class goes to the log only."""
    log.log(level, "%s (%s)", message, type(exc).__name__)
    return message


def _check_scheme(ref: KeyRef, scheme: SignatureScheme) -> None:
    if ref.algorithm.is_rsa == (scheme is SignatureScheme.ECDSA):
        raise ValueError(f"{scheme.value} does not go with a {ref.algorithm.value} key")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value).strip()


def _algorithm_of(obj: Any, key_type: Any) -> KeyAlgorithm | None:
    """Our name for a private key's type and size; None for keys govsign does not make."""
    if key_type == KeyType.RSA:
        bits = len(obj[Attribute.MODULUS]) * 8 if _readable(obj, Attribute.MODULUS) else 0
        return {2048: KeyAlgorithm.RSA2048, 3072: KeyAlgorithm.RSA3072, 4096: KeyAlgorithm.RSA4096}.get(bits)
    if key_type != KeyType.EC:
        return None
    params = bytes(obj[Attribute.EC_PARAMS])
    if params == encode_named_curve_parameters("secp384r1"):
        return KeyAlgorithm.EC_P384
    if params == encode_named_curve_parameters("secp256r1"):
        return KeyAlgorithm.EC_P256
    return None


def _readable(obj: Any, attribute: Attribute) -> bool:
    try:
        obj[attribute]
    except p11errors.PKCS11Error:
        return False
    return True


def reload_module_after_token_change(module_path: str) -> None:
    """Make an already-loaded module see tokens created by another process."""
    with MODULE_LOCK:
        lib = _loaded_libraries.get(module_path)
        if lib is not None:
            lib.reinitialize()
