"""Settings, read from ``GOVSIGN_*`` environment variables (and an optional ``.env`` file).

Every value is checked when the settings are built, so a misconfigured service stops at start-up
with one sentence that names the setting, instead of failing on the first request.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from govsign.errors import ConfigurationError

SOFTHSM2_LIBRARY_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)

#: Default certificate policy: an arc under IANA's Private Enterprise Number 32473, which RFC 5612
#: reserves for documentation and examples, so it never names a real policy. (The X.660 example
#: arc 2.999 would be the other choice, but pyasn1, and so pkilint, cannot decode second arcs
#: above 39 under arc 2.) Production deployments set the OID of their CP/CPS.
TEST_CERTIFICATE_POLICY_OID = "1.3.6.1.4.1.32473.1.1"

_OID_PATTERN = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")

#: The settings that name a file which must exist, with what that file is.
_FILE_SETTINGS = {
    "pkcs11_module": "PKCS#11 library",
    "hsm_pin_file": "PIN file",
    "trust_anchors_file": "trust anchors file",
    "intermediates_file": "intermediates file",
}


def find_softhsm2_library() -> Path | None:
    """Where SoftHSM2's PKCS#11 library is on this system, if it is installed."""
    for candidate in SOFTHSM2_LIBRARY_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for candidate in sorted(glob.glob("/usr/lib/*/softhsm/libsofthsm2.so")):
        return Path(candidate)
    return None


class Settings(BaseSettings):
    """The service's configuration. See CONTRACT.md for the contract on the first six."""

    model_config = SettingsConfigDict(env_prefix="GOVSIGN_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(default=Path("./govsign-data"))
    """Where the embedded default keeps its SQLite file, SoftHSM2 token store and published files."""
    database_url: str | None = None
    """SQLAlchemy-style database URL; ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``."""
    pkcs11_module: Path | None = None
    """Path of the PKCS#11 library; unset means the embedded SoftHSM2 under the data dir."""
    hsm_token_label: str = "govsign"
    """Label of the token holding the service's keys."""
    hsm_pin: SecretStr | None = None
    """User PIN of the token."""
    hsm_pin_file: Path | None = None
    """A file holding the user PIN (first line)."""
    public_base_url: str = "http://127.0.0.1:8000"
    """Base URL written into certificates (AIA, CRL distribution points) and used by ``serve``."""
    certificate_policy_oid: str = TEST_CERTIFICATE_POLICY_OID
    """Certificate policy OID placed in CA and subscriber certificates."""
    subscriber_default_validity_days: int = Field(default=730, ge=1)
    """Validity of subscriber certificates when none is asked for."""
    ocsp_responder_validity_days: int = Field(default=30, ge=1, le=366)
    """Validity of the delegated OCSP responder certificate (short-lived, renewed automatically)."""
    tsa_validity_days: int = Field(default=1826, ge=1)
    """Validity of the TSA certificate."""
    tsa_policy_oid: str = "1.3.6.1.4.1.32473.1.2"
    """TSA policy OID placed in time-stamp tokens whose request names no (accepted) policy."""
    tsa_accuracy_seconds: int = Field(default=1, ge=1, le=60)
    """Accuracy of genTime stated in every time-stamp token, in seconds."""
    lint_with_pkilint: bool = True
    """Run pkilint on every to-be-signed certificate and CRL before the HSM signs it."""
    crl_validity_hours: int = Field(default=24, ge=1, le=24 * 31)
    """nextUpdate - thisUpdate of CRLs."""
    crl_refresh_before_hours: int = Field(default=6, ge=0)
    """A new CRL is signed when less than this remains before nextUpdate."""
    crl_delta_base_max_age_hours: int = Field(default=24, ge=1)
    """How long a complete CRL stays the base of the delta CRLs."""
    ocsp_response_validity_minutes: int = Field(default=240, ge=5)
    """nextUpdate - thisUpdate of OCSP responses."""
    ocsp_refresh_before_minutes: int = Field(default=60, ge=1)
    """Pre-produced OCSP responses are re-signed when less than this remains before nextUpdate."""
    ocsp_max_cert_ids: int = Field(default=20, ge=1, le=1000)
    """Most CertIDs accepted in one OCSP request."""
    ocsp_http_max_age_seconds: int = Field(default=60, ge=0)
    """Upper bound of Cache-Control max-age on OCSP GET responses (RFC 5019)."""
    api_secret_key_file: Path | None = None
    """File with the server key (32+ bytes) that API client secrets are hashed with (HMAC-SHA256);
    unset means one generated into the data dir (mode 0600). Every process serving the API
    must use the same key."""
    dual_control: str = "revoke-organization,ca-administration"
    """Operations that need a second officer's approval: revoke-organization, revoke-any,
    suspend, enrol, ca-administration (comma-separated; empty for none)."""
    trusted_proxies: str = ""
    """Addresses of TLS-terminating proxies allowed to pass a client certificate (comma-separated)."""
    client_certificate_header: str = "X-SSL-Client-Cert"
    """Header in which a trusted proxy passes the client certificate (PEM, URL-encoded)."""
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest JSON API request body accepted."""
    max_document_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest document (PDF, content, e-mail) accepted by the signing endpoints; streamed to disk."""
    public_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest upload the public verification page (/verify, /v/) accepts; streamed to disk."""
    public_verify_per_minute: int = Field(default=30, ge=1)
    """Verifications one address may ask of the public page in a minute (then 429)."""
    rsa_signature_algorithm: Literal["rsa-pss", "rsa-pkcs1v15"] = "rsa-pkcs1v15"
    """How RSA keys sign PDF, CMS and digest signatures when a request names no
    ``signature_algorithm``: RSASSA-PSS (as Circular 15/2025 Appendix I names it) or PKCS#1 v1.5,
    which every relying party verifies (``openssl smime`` does not verify PSS, for one). S/MIME
    always signs with PKCS#1 v1.5; EC keys always sign with ECDSA."""
    stamp_font_file: Path | None = None
    """TrueType font with Vietnamese glyphs for visible stamps (default: DejaVu Sans from the system)."""
    audit_export: Path | None = None
    """Append-only JSON-lines export of the audit checkpoints and head records, outside the
    database (also logged on ``govsign.audit.export``); ``audit verify`` reads it by default."""
    trust_anchors_file: Path | None = None
    """PEM bundle of extra root certificates trusted when verifying (our own roots always are)."""
    intermediates_file: Path | None = None
    """PEM bundle of CA certificates offered for path building when a document embeds only the leaf."""
    report_seal_credential: str | None = Field(default=None, pattern="^[0-9a-fA-F]{1,40}$")
    """Serial (hex) of the organization or device certificate whose HSM key seals verification
    reports rendered as PDF (``?format=pdf``); unset, PDF reports are refused."""
    verification_fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    """Bound on each OCSP or CRL fetch during a verification."""
    verification_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    """Bound on a whole verification; past it the result is INDETERMINATE."""
    activation_ttl_seconds: int = Field(default=300, ge=10, le=300)
    """Lifetime of an official's signature activation (sole control: at most five minutes)."""
    factor_failure_limit: int = Field(default=5, ge=1, le=20)
    """Wrong one-time codes or PINs in a row before an official's factors lock."""
    factor_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    """How long the factors stay locked after too many failures."""
    metrics_token: SecretStr | None = None
    """When set, GET /metrics requires 'Authorization: Bearer <token>'."""
    auth_failure_limit: int = Field(default=10, ge=1)
    """Failed authentications per minute from one address naming one client before further
    failures get 429 (ten times as many from one address in all); valid credentials always pass."""
    pending_key_grace_seconds: int = Field(default=600, ge=0)
    """How old a pending key marker (a key generated for an issuance whose certificate never
    committed: a crash) must be before ``govsign hsm reconcile`` and the service at start-up
    destroy its key."""
    background_tasks: bool = True
    """Run CRL publication, OCSP pre-production and responder rollover inside ``serve``."""
    background_lease_seconds: float = Field(default=6.0, ge=1.0, le=300.0)
    """Lifetime of the lease under which one process of the deployment runs the background jobs
    (renewed every third of it; a dead holder is replaced after at most this long)."""

    @field_validator("dual_control")
    @classmethod
    def _check_dual_control(cls, value: str) -> str:
        allowed = {"revoke-organization", "revoke-any", "suspend", "enrol", "ca-administration"}
        names = {part.strip() for part in value.split(",") if part.strip()}
        unknown = names - allowed
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; use {sorted(allowed)}")
        return ",".join(sorted(names))

    @property
    def dual_control_operations(self) -> frozenset[str]:
        return frozenset(part for part in self.dual_control.split(",") if part)

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.trusted_proxies.split(",") if part.strip())

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host name")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("certificate_policy_oid", "tsa_policy_oid")
    @classmethod
    def _check_oid(cls, value: str) -> str:
        if not _OID_PATTERN.match(value):
            raise ValueError("must be a dotted object identifier such as 1.3.6.1.4.1.32473.1.1")
        return value

    @field_validator("hsm_token_label")
    @classmethod
    def _check_label(cls, value: str) -> str:
        if not value or len(value.encode("utf-8")) > 32:
            raise ValueError("must be 1 to 32 bytes long")
        return value

    @field_validator(*_FILE_SETTINGS)
    @classmethod
    def _check_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_file():
            raise ValueError(f"no {_FILE_SETTINGS[str(info.field_name)]} at {value}")
        return value

    # -- derived values ---------------------------------------------------------------------

    @property
    def embedded_hsm(self) -> bool:
        """True when the service runs its own SoftHSM2 token under the data dir."""
        return self.pkcs11_module is None

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def softhsm2_conf_path(self) -> Path:
        return self.data_dir / "softhsm2.conf"

    @property
    def token_dir(self) -> Path:
        return self.data_dir / "tokens"

    @property
    def generated_pin_path(self) -> Path:
        return self.data_dir / "hsm-user-pin"

    @property
    def generated_so_pin_path(self) -> Path:
        return self.data_dir / "hsm-so-pin"

    def sqlalchemy_url(self) -> str:
        """The database URL with the driver this project uses (psycopg 3 for PostgreSQL)."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'govsign.sqlite3').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def module_path(self) -> Path:
        """The PKCS#11 library to load: the configured one, or SoftHSM2's for the embedded default."""
        if self.pkcs11_module is not None:
            return self.pkcs11_module
        found = find_softhsm2_library()
        if found is None:
            raise ConfigurationError(
                "SoftHSM2 is not installed and GOVSIGN_PKCS11_MODULE is not set; install softhsm2 "
                "or point GOVSIGN_PKCS11_MODULE at your HSM's PKCS#11 library."
            )
        return found

    def configured_pin(self) -> str | None:
        """The PIN from GOVSIGN_HSM_PIN or GOVSIGN_HSM_PIN_FILE, if either is set."""
        if self.hsm_pin is not None and self.hsm_pin.get_secret_value():
            return self.hsm_pin.get_secret_value()
        if self.hsm_pin_file is not None:
            lines = self.hsm_pin_file.read_text(encoding="utf-8").splitlines()
            if not lines or not lines[0].strip():
                raise ConfigurationError(f"The PIN file named by GOVSIGN_HSM_PIN_FILE ({self.hsm_pin_file}) is empty.")
            return lines[0].strip()
        return None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one sentence that names the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"GOVSIGN_{field.upper()} is invalid: {message}.") from None
