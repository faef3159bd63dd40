"""Opening and closing the service from its settings: the one place (with the front ends) that
reads the configuration.

:meth:`Services.open` opens the database and logs in to the token (for the embedded default it
lays out SoftHSM2's configuration, creates the token and generates the PIN when asked to
initialize), then wires each use case with exactly the parts it uses. The front ends pick the use
cases they serve from the :class:`Services` they opened and close it when they stop.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from govsign.clock import Clock, SystemClock
from govsign.config import Settings
from govsign.errors import ConfigurationError, GovsignError, HSMLoginError
from govsign.keystore.pkcs11 import PKCS11KeyStore, reload_module_after_token_change
from govsign.keystore.token_init import create_token
from govsign.pki.authority import AuthorityPolicy
from govsign.pki.crl import CRLPolicy
from govsign.pki.lint import PKILintCertificateLinter, PKILintCRLLinter
from govsign.pki.ocsp import OCSPPolicy
from govsign.services.approvals import REPLACE_SERVICE_CERTIFICATE, Approvals, ApprovedOperationsByName, DualControl
from govsign.services.audit_checkpoints import AuditCheckpoints, AuditExport
from govsign.services.audit_log import AuditKeys, AuditLog
from govsign.services.authentication import Authentication
from govsign.services.authorization import Authorization, Requester
from govsign.services.certificates import Certificates, keys_of_approved
from govsign.services.directory import Directory
from govsign.services.evidence import EvidenceService
from govsign.services.health import Health
from govsign.services.hierarchy import Hierarchy
from govsign.services.hsm import HSMInventory
from govsign.services.idempotency import IdempotentRequests
from govsign.services.leases import Leases
from govsign.services.maintenance import Maintenance
from govsign.services.outage import HSMOutage
from govsign.services.sole_control import SoleControl, SoleControlPolicy
from govsign.services.status import CRLService, OCSPService, TimeStampService
from govsign.services.trust import TrustSettings
from govsign.services.uow import UnitOfWork
from govsign.storage.engine import Database
from govsign.storage.migrate import is_at_head, upgrade_to_head
from govsign.tsa.authority import TSAPolicy

SOFTHSM2_CONF_TEMPLATE = """\
# SoftHSM2 configuration of the govsign embedded default (see hsm/softhsm2.conf.template).
directories.tokendir = {token_dir}
objectstore.backend = file
log.level = ERROR
slots.removable = false
"""

_EMBEDDED_CONF_IN_USE: str | None = None


if TYPE_CHECKING:
    from govsign.services.public_verification import PublicVerification
    from govsign.services.remote_signing import RemoteSigning
    from govsign.services.signatures import Signatures
    from govsign.services.stamp_images import StampImages
    from govsign.services.verification_reports import VerificationReportDocuments
    from govsign.services.verifications import Verifications


class Services:
    """The opened service: its resources and one instance of each use case, wired once."""

    def __init__(self, *, settings: Settings, database: Database, keystore: PKCS11KeyStore, clock: Clock) -> None:
        """Wire every use case once, in dependency order. This is the composition root: it is
        long because it is a flat list of constructions (no logic), kept in one place so that
        what each service gets is visible at a glance."""
        self.database = database
        self.keystore = keystore
        self.clock = clock
        authority_policy = AuthorityPolicy(
            public_base_url=settings.public_base_url,
            certificate_policy_oid=settings.certificate_policy_oid,
            subscriber_default_validity_days=settings.subscriber_default_validity_days,
            ocsp_responder_validity_days=settings.ocsp_responder_validity_days,
            tsa_validity_days=settings.tsa_validity_days,
        )
        lint = settings.lint_with_pkilint
        self.audit_keys = AuditKeys(database=database, keystore=keystore, clock=clock)
        self.audit = AuditLog(database=database, clock=clock, keys=self.audit_keys, keystore=keystore)
        self.authorization = Authorization(database=database)
        server_key = ServerKey(settings)
        self.authentication = Authentication(
            database=database,
            clock=clock,
            audit=self.audit,
            server_key=server_key,
            failure_limit=settings.auth_failure_limit,
        )
        self.leases = Leases(
            database=database, clock=clock, ttl=dt.timedelta(seconds=settings.background_lease_seconds)
        )
        self.directory = Directory(
            database=database, clock=clock, audit=self.audit, authorization=self.authorization, server_key=server_key
        )
        self.idempotency = IdempotentRequests(database=database, clock=clock)
        ocsp_policy = OCSPPolicy(
            response_validity=dt.timedelta(minutes=settings.ocsp_response_validity_minutes),
            refresh_before=dt.timedelta(minutes=settings.ocsp_refresh_before_minutes),
            max_cert_ids=settings.ocsp_max_cert_ids,
        )
        self.outage = HSMOutage(database=database, keystore=keystore, audit=self.audit, clock=clock)
        self.ocsp = OCSPService(
            database=database, keystore=keystore, clock=clock, policy=ocsp_policy, refusals=self.outage.refused
        )
        tsa_policy = TSAPolicy(policy_oid=settings.tsa_policy_oid, accuracy_seconds=settings.tsa_accuracy_seconds)
        self.timestamps = TimeStampService(
            database=database, keystore=keystore, clock=clock, policy=tsa_policy, refusals=self.outage.refused
        )
        self.audit_checkpoints = AuditCheckpoints(
            database=database,
            keystore=keystore,
            clock=clock,
            keys=self.audit_keys,
            audit=self.audit,
            export=AuditExport(settings.audit_export),
            timestamp=self.timestamps.answer,
        )
        crl_policy = CRLPolicy(
            validity=dt.timedelta(hours=settings.crl_validity_hours),
            refresh_before=dt.timedelta(hours=settings.crl_refresh_before_hours),
            delta_base_max_age=dt.timedelta(hours=settings.crl_delta_base_max_age_hours),
        )
        crl_linter = PKILintCRLLinter() if lint else None
        self.crls = CRLService(
            database=database,
            keystore=keystore,
            clock=clock,
            policy=crl_policy,
            urls=authority_policy.urls,
            linter=crl_linter,
            audit=self.audit,
        )
        self.uow = UnitOfWork(
            database=database,
            keystore=keystore,
            clock=clock,
            audit=self.audit,
            policy=authority_policy,
            linter=PKILintCertificateLinter() if lint else None,
            status_listener=self.ocsp.listener,
        )
        dual_control = DualControl(operations=settings.dual_control_operations, clock=clock, audit=self.audit)
        self.certificates = Certificates(
            database=database, uow=self.uow, authorization=self.authorization, dual_control=dual_control
        )
        self.hierarchy = Hierarchy(
            database=database,
            uow=self.uow,
            authorization=self.authorization,
            dual_control=dual_control,
            publish_crls=lambda: self.crls.publish(force=True),
            service_certificates_changed=self.reload_service_credentials,
        )
        self.approvals = Approvals(
            database=database,
            uow=self.uow,
            clock=clock,
            authorization=self.authorization,
            executor=ApprovedOperationsByName(self.certificates, {REPLACE_SERVICE_CERTIFICATE: self.hierarchy}),
            publish_crls=lambda: self.crls.publish(force=True),
            keys_of=keys_of_approved,
            after_commit=lambda operation: (
                self.reload_service_credentials() if operation == REPLACE_SERVICE_CERTIFICATE else None
            ),
        )
        self.evidence = EvidenceService(database=database, ocsp=self.ocsp, crls=self.crls, timestamps=self.timestamps)
        sole_control_policy = SoleControlPolicy(
            activation_ttl_seconds=settings.activation_ttl_seconds,
            factor_failure_limit=settings.factor_failure_limit,
            factor_lockout_minutes=settings.factor_lockout_minutes,
        )
        self.sole_control = SoleControl(
            uow=self.uow,
            keystore=keystore,
            clock=clock,
            authorization=self.authorization,
            audit=self.audit,
            policy=sole_control_policy,
        )
        self.maintenance = Maintenance(
            uow=self.uow,
            clock=clock,
            ocsp=self.ocsp,
            crls=self.crls,
            checkpoints=self.audit_checkpoints,
            responder_validity=dt.timedelta(days=settings.ocsp_responder_validity_days),
            timestamps=self.timestamps,
            tsa_validity=dt.timedelta(days=settings.tsa_validity_days),
        )
        self.server_key = server_key
        self.hsm = HSMInventory(keystore=keystore, database=database, clock=clock, audit=self.audit)
        self.health = Health(database=database, keystore=keystore)
        self._settings = settings
        # read at start-up, so that a bad trust file stops the service with its name
        self._trust = TrustSettings.load(
            settings.trust_anchors_file,
            settings.intermediates_file,
            fetch_timeout=settings.verification_fetch_timeout_seconds,
            timeout=settings.verification_timeout_seconds,
        )

    def reload_service_credentials(self) -> None:
        """Read the OCSP responder and TSA certificates again (one was replaced or rolled over)."""
        self.ocsp.responder(reload=True)
        self.timestamps.authority(reload=True)

    def build_document_services(self) -> None:
        """Build the document use cases now (a server does at start-up; the CLI when first used)."""
        for built in (
            self.stamp_images,
            self.signatures,
            self.remote_signing,
            self.verifications,
            self.verification_reports,
            self.public_verification,
        ):
            assert built is not None

    # The document use cases are built on first use: their cores (pyHanko, the PDF and XML
    # libraries) take about a second to import, which no CA command of the CLI needs.

    @functools.cached_property
    def stamp_images(self) -> StampImages:
        from govsign.services.stamp_images import StampImages

        return StampImages(uow=self.uow, clock=self.clock, authorization=self.authorization, audit=self.audit)

    @functools.cached_property
    def signatures(self) -> Signatures:
        from govsign.services.signatures import Signatures

        settings = self._settings
        return Signatures(
            uow=self.uow,
            keystore=self.keystore,
            clock=self.clock,
            authorization=self.authorization,
            audit=self.audit,
            sole_control=self.sole_control,
            evidence=self.evidence,
            timestamps=self.timestamps,
            stamp_font=settings.stamp_font_file,
            rsa_signature_algorithm=settings.rsa_signature_algorithm,
            verification_base_url=settings.public_base_url,
        )

    @functools.cached_property
    def remote_signing(self) -> RemoteSigning:
        from govsign.services.remote_signing import RemoteSigning

        return RemoteSigning(
            uow=self.uow,
            clock=self.clock,
            authorization=self.authorization,
            audit=self.audit,
            sole_control=self.sole_control,
            signatures=self.signatures,
            timestamps=self.timestamps,
        )

    @functools.cached_property
    def public_verification(self) -> PublicVerification:
        from govsign.services.public_verification import PublicPolicy, PublicVerification

        return PublicVerification(
            uow=self.uow,
            clock=self.clock,
            audit=self.audit,
            verifications=self.verifications,
            reports=self.verification_reports,
            policy=PublicPolicy(verifications_per_minute=self._settings.public_verify_per_minute),
        )

    @functools.cached_property
    def verifications(self) -> Verifications:
        from govsign.services.verifications import Verifications

        return Verifications(
            database=self.database,
            clock=self.clock,
            authorization=self.authorization,
            audit=self.audit,
            ocsp=self.ocsp,
            evidence=self.evidence,
            trust=self._trust,
        )

    @functools.cached_property
    def verification_reports(self) -> VerificationReportDocuments:
        from govsign.services.verification_reports import VerificationReportDocuments

        return VerificationReportDocuments(
            uow=self.uow,
            clock=self.clock,
            verifications=self.verifications,
            signatures=self.signatures,
            seal_credential=self._settings.report_seal_credential,
            font=self._settings.stamp_font_file,
        )

    @classmethod
    def open(cls, settings: Settings, *, initialize: bool = False, clock: Clock | None = None) -> Services:
        """Open the database and log in to the token; with ``initialize``, create what is missing
        (data dir, SoftHSM2 token, PIN, schema). Fails fast with one sentence naming the setting."""
        clock = clock or SystemClock()
        restrict_new_files()
        database = open_database(settings, initialize=initialize)
        try:
            keystore = open_keystore(settings, create=initialize)
        except GovsignError as exc:
            if isinstance(exc, HSMLoginError):
                AuditLog(database=database, clock=clock).record_refusal(
                    "hsm.login", Requester(actor="system"), settings.hsm_token_label, exc, object_type="token"
                )
            database.dispose()
            raise
        except BaseException:
            database.dispose()
            raise
        try:
            if initialize and (settings.embedded_database or settings.embedded_hsm):
                tighten_data_dir(settings.data_dir)
            services = cls(settings=settings, database=database, keystore=keystore, clock=clock)
            services.audit_keys.ensure()  # once per deployment, whoever starts first
            return services
        except BaseException:
            keystore.close()
            database.dispose()
            raise

    def close(self) -> None:
        self.audit_checkpoints.at_close()  # due checkpoints and the last head record
        self.keystore.close()
        self.database.dispose()


#: The process umask of the service and the CLI: what they create is their user's alone.
PRIVATE_UMASK = 0o077


def restrict_new_files() -> None:
    """Set the process umask so that every file and directory the service, SQLite (the
    database, its -wal and -shm) or SoftHSM2 creates is readable by its owner only."""
    os.umask(PRIVATE_UMASK)


def tighten_data_dir(data_dir: Path) -> None:
    """Make the data dir 0700 and everything in it owner-only (directories 0700, files 0600):
    a data dir made by hand before ``init``, or by an older version, keeps no readable file
    (the database holds token HMACs and PIN hashes). Symbolic links are not followed."""
    if not data_dir.is_dir():
        return
    data_dir.chmod(0o700)
    for root, directories, files in os.walk(data_dir):
        for name in directories:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o600)


def open_database(settings: Settings, *, initialize: bool) -> Database:
    """The database, at the schema's head (migrated first with ``initialize``)."""
    if settings.embedded_database:
        sqlite_file = settings.data_dir / "govsign.sqlite3"
        if not initialize and not sqlite_file.exists():
            raise ConfigurationError(
                f"There is no govsign database in {settings.data_dir} (GOVSIGN_DATA_DIR); run 'govsign init' first."
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.sqlalchemy_url())
    try:
        database.check()
        if initialize:
            upgrade_to_head(database.engine)
        elif not is_at_head(database.engine):
            raise ConfigurationError("The database schema is missing or out of date; run 'govsign init'.")
    except BaseException:
        database.dispose()
        raise
    return database


def prepare_embedded_hsm(settings: Settings, *, create: bool) -> None:
    """Lay out SoftHSM2's configuration and token store under the data dir and point
    SOFTHSM2_CONF at it (before the library is loaded).

    SoftHSM2 reads SOFTHSM2_CONF once, when the library is initialised: one process can use the
    token store of one data dir only, and opening another is refused rather than silently
    using the first one's tokens.
    """
    global _EMBEDDED_CONF_IN_USE
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
        conf.chmod(0o600)
    wanted = str(conf.resolve())
    if _EMBEDDED_CONF_IN_USE is not None and wanted != _EMBEDDED_CONF_IN_USE:
        raise ConfigurationError(
            f"This process already uses the SoftHSM2 token store of {Path(_EMBEDDED_CONF_IN_USE).parent}; "
            "one process serves one GOVSIGN_DATA_DIR."
        )
    os.environ["SOFTHSM2_CONF"] = wanted
    _EMBEDDED_CONF_IN_USE = wanted


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


class ServerKey:
    """The server key, read (or generated) when first needed: commands that never touch an API
    client do not depend on GOVSIGN_API_SECRET_KEY_FILE."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key: bytes | None = None

    def __call__(self) -> bytes:
        if self._key is None:
            self._key = load_server_key(self._settings)
        return self._key


def load_server_key(settings: Settings) -> bytes:
    """The key API client secrets are hashed with (GOVSIGN_API_SECRET_KEY_FILE or generated)."""
    path = settings.api_secret_key_file or settings.data_dir / "api-secret-key"
    if not path.exists():
        if settings.api_secret_key_file is not None:
            raise ConfigurationError(f"GOVSIGN_API_SECRET_KEY_FILE names {path}, which does not exist.")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    text = Path(path).read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ConfigurationError("The API secret key (GOVSIGN_API_SECRET_KEY_FILE) must hold at least 32 characters.")
    return text.encode("ascii")


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"The PIN file {path} must be readable by its owner only (mode 0600).")
    return path.read_text(encoding="utf-8").splitlines()[0].strip()
