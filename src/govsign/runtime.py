"""Composition of the service from its settings: database, keystore, clock, linter, authority.

Both front ends (``api`` and ``cli``) build a :class:`Runtime` and run operations through
:meth:`Runtime.execute`, which gives each operation one unit of work, undoes HSM side effects
when the transaction does not commit, and records refused operations in the audit log.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from govsign.clock import Clock, SystemClock
from govsign.config import Settings
from govsign.errors import ConfigurationError, ErrorKind, GovsignError, HSMLoginError
from govsign.keystore.pkcs11 import PKCS11KeyStore, reload_module_after_token_change
from govsign.keystore.token_init import create_token
from govsign.pki.authority import AuthorityPolicy, CertificateAuthority, IssuedCertificate, Progress
from govsign.pki.lint import PKILintCertificateLinter
from govsign.pki.ports import AuditEvent
from govsign.storage.engine import Database
from govsign.storage.migrate import is_at_head, upgrade_to_head

log = logging.getLogger(__name__)

T = TypeVar("T")

SOFTHSM2_CONF_TEMPLATE = """\
# SoftHSM2 configuration of the govsign embedded default (see hsm/softhsm2.conf.template).
directories.tokendir = {token_dir}
objectstore.backend = file
log.level = ERROR
slots.removable = false
"""


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"The PIN file {path} must be readable by its owner only (mode 0600).")
    return path.read_text(encoding="utf-8").splitlines()[0].strip()


def prepare_embedded_hsm(settings: Settings, *, create: bool) -> None:
    """Lay out SoftHSM2's configuration and token store under the data dir and point
    SOFTHSM2_CONF at it (before the library is loaded)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = settings.softhsm2_conf_path
    if not conf.exists():
        if not create:
            raise ConfigurationError(
                f"There is no SoftHSM2 configuration at {conf}; run 'govsign init' first "
                "(or set GOVSIGN_DATA_DIR to an initialised data dir)."
            )
        conf.write_text(SOFTHSM2_CONF_TEMPLATE.format(token_dir=settings.token_dir.resolve()), encoding="utf-8")
    os.environ["SOFTHSM2_CONF"] = str(conf.resolve())


def resolve_pin(settings: Settings, *, create: bool) -> str:
    """The user PIN: from GOVSIGN_HSM_PIN(_FILE), or the one generated for the embedded default."""
    configured = settings.configured_pin()
    if configured is not None:
        return configured
    if not settings.embedded_hsm:
        raise ConfigurationError("GOVSIGN_HSM_PIN or GOVSIGN_HSM_PIN_FILE must be set when GOVSIGN_PKCS11_MODULE is.")
    path = settings.generated_pin_path
    if path.exists():
        return _read_secret(path)
    if not create:
        raise ConfigurationError(
            f"No HSM PIN is configured and none was generated at {path}; set GOVSIGN_HSM_PIN or run 'govsign init'."
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_secret(path, secrets.token_urlsafe(18))
    return _read_secret(path)


def policy_from_settings(settings: Settings) -> AuthorityPolicy:
    return AuthorityPolicy(
        public_base_url=settings.public_base_url,
        certificate_policy_oid=settings.certificate_policy_oid,
        subscriber_default_validity_days=settings.subscriber_default_validity_days,
        ocsp_responder_validity_days=settings.ocsp_responder_validity_days,
        tsa_validity_days=settings.tsa_validity_days,
    )


class Runtime:
    """The opened service: database, keystore and the CA's policy."""

    def __init__(self, *, settings: Settings, database: Database, keystore: PKCS11KeyStore, clock: Clock) -> None:
        self.settings = settings
        self.database = database
        self.keystore = keystore
        self.clock = clock
        self.policy = policy_from_settings(settings)
        self.linter = PKILintCertificateLinter() if settings.lint_with_pkilint else None

    @classmethod
    def open(cls, settings: Settings, *, initialize: bool = False, clock: Clock | None = None) -> Runtime:
        """Open the database and log in to the token; with ``initialize``, create what is missing
        (data dir, SoftHSM2 token, PIN, schema). Fails fast with one sentence naming the setting."""
        if settings.embedded_database:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database(settings.sqlalchemy_url())
        try:
            database.check()
            if initialize:
                upgrade_to_head(database.engine)
            elif not is_at_head(database.engine):
                raise ConfigurationError("The database schema is missing or out of date; run 'govsign init'.")
            keystore = open_keystore(settings, create=initialize)
        except GovsignError as exc:
            if isinstance(exc, HSMLoginError):
                _record_failure(
                    database, clock or SystemClock(), "hsm.login", "system", "token", settings.hsm_token_label, exc
                )
            database.dispose()
            raise
        except BaseException:
            database.dispose()
            raise
        return cls(settings=settings, database=database, keystore=keystore, clock=clock or SystemClock())

    def authority(self, ports: object, progress: Progress | None = None) -> CertificateAuthority:
        return CertificateAuthority(
            ports=ports,  # type: ignore[arg-type]
            keystore=self.keystore,
            clock=self.clock,
            policy=self.policy,
            linter=self.linter,
            progress=progress or (lambda _message: None),
        )

    def execute(
        self,
        operation: Callable[[CertificateAuthority], T],
        *,
        action: str,
        actor: str,
        object_id: str,
        progress: Progress | None = None,
    ) -> T:
        """Run one CA operation in one transaction.

        If the operation generated a key pair in the HSM and the transaction then fails to
        commit, the key pair is destroyed, so a failure leaves neither rows nor keys behind.
        Refusals (bad input, policy, state conflicts) are recorded as failed audit events in a
        transaction of their own.
        """
        result: T | None = None
        try:
            with self.database.unit_of_work() as ports:
                result = operation(self.authority(ports, progress))
            return result
        except BaseException as exc:
            if isinstance(result, IssuedCertificate) and result.generated_key is not None:
                try:
                    self.keystore.destroy_key_pair(result.generated_key)
                except GovsignError:
                    log.error("could not destroy key %s after a failed commit", result.generated_key.label)
            if isinstance(exc, GovsignError) and exc.kind is not ErrorKind.UNAVAILABLE:
                _record_failure(self.database, self.clock, action, actor, "certificate", object_id, exc)
            raise

    def close(self) -> None:
        self.keystore.close()
        self.database.dispose()


def open_keystore(settings: Settings, *, create: bool) -> PKCS11KeyStore:
    """Log in to the configured token; for the embedded default, create the token if asked."""
    if settings.embedded_hsm:
        prepare_embedded_hsm(settings, create=create)
    module = str(settings.module_path())
    pin = resolve_pin(settings, create=create)
    keystore = PKCS11KeyStore(module_path=module, token_label=settings.hsm_token_label, pin=pin)
    try:
        keystore.open()
    except ConfigurationError as exc:
        if not (create and settings.embedded_hsm and "No token labelled" in exc.message):
            raise
        so_pin_path = settings.generated_so_pin_path
        if not so_pin_path.exists():
            _write_secret(so_pin_path, secrets.token_urlsafe(18))
        create_token(
            module_path=module,
            token_label=settings.hsm_token_label,
            so_pin=_read_secret(so_pin_path),
            user_pin=pin,
            env=dict(os.environ),
        )
        reload_module_after_token_change(module)
        keystore.open()
    return keystore


def _record_failure(
    database: Database, clock: Clock, action: str, actor: str, object_type: str, object_id: str, error: GovsignError
) -> None:
    try:
        with database.unit_of_work() as ports:
            ports.audit.append(
                AuditEvent(
                    action=action,
                    actor=actor,
                    object_type=object_type,
                    object_id=object_id[:200],
                    outcome="failure",
                    details={"error": error.kind.value, "message": error.message[:500]},
                ),
                at=clock.now(),
            )
    except Exception:  # the refusal itself must reach the caller even if auditing fails
        log.exception("could not record a failed %s in the audit log", action)
