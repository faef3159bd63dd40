"""One error hierarchy for the whole service.

The cores raise subclasses of :class:`GovsignError`; each carries an :class:`ErrorKind` that the
front ends map to their own protocol (HTTP problem documents in ``api/``, exit codes in ``cli/``).
Messages are one complete sentence meant for the person who caused the error; internal details
(stack traces, driver messages, PINs) never go into them.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What went wrong, in terms a front end can map to its protocol."""

    INVALID_INPUT = "invalid-input"
    """The request is malformed or violates a rule (HTTP 422, CLI exit 2)."""
    NOT_FOUND = "not-found"
    """The named object does not exist (HTTP 404)."""
    CONFLICT = "conflict"
    """The object's state does not allow the operation (HTTP 409)."""
    POLICY_VIOLATION = "policy-violation"
    """The request is well formed but the CA's policy forbids it (HTTP 422)."""
    UNAVAILABLE = "unavailable"
    """A dependency (HSM, database) cannot be reached right now (HTTP 503)."""
    CONFIGURATION = "configuration"
    """The service is misconfigured; the message names the setting."""
    INTERNAL = "internal"
    """A bug or an invariant violation; details are logged, not shown."""
    UNAUTHENTICATED = "unauthenticated"
    """No valid credentials (HTTP 401)."""
    FORBIDDEN = "forbidden"
    """Authenticated, but the role or agency does not allow it (HTTP 403)."""
    RATE_LIMITED = "rate-limited"
    """Too many failed attempts from this source (HTTP 429)."""


class GovsignError(Exception):
    """Base of every error the service raises on purpose."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInputError(GovsignError):
    kind = ErrorKind.INVALID_INPUT


class InvalidCSRError(InvalidInputError):
    """A PKCS#10 request that cannot be parsed, has a bad signature or a weak algorithm."""


class InvalidSubjectError(InvalidInputError):
    """A subject name that cannot be parsed or breaks the naming rules."""


class UnknownProfileError(InvalidInputError):
    """A certificate profile name that does not exist."""


class PolicyViolationError(GovsignError):
    kind = ErrorKind.POLICY_VIOLATION


class ServiceCertificateError(PolicyViolationError):
    """A subscriber lifecycle operation asked for on one of the CA's own service certificates."""


class LintFailedError(PolicyViolationError):
    """The to-be-signed certificate failed the pre-issuance lint; nothing was signed."""

    def __init__(self, message: str, findings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class NotFoundError(GovsignError):
    kind = ErrorKind.NOT_FOUND


class ConflictError(GovsignError):
    kind = ErrorKind.CONFLICT


class AlreadyRevokedError(ConflictError):
    """The certificate is already revoked."""


class InvalidStateTransitionError(ConflictError):
    """The certificate's status does not allow the requested change."""


class AlreadyInitializedError(ConflictError):
    """The CA hierarchy exists and was created with other parameters."""


class UnavailableError(GovsignError):
    kind = ErrorKind.UNAVAILABLE


class HSMUnavailableError(UnavailableError):
    """The PKCS#11 module or token cannot be used right now."""


class DatabaseUnavailableError(UnavailableError):
    """The database cannot be reached."""


class ConfigurationError(GovsignError):
    kind = ErrorKind.CONFIGURATION


class HSMLoginError(ConfigurationError):
    """The token refused the PIN."""


class InternalError(GovsignError):
    kind = ErrorKind.INTERNAL


class UnauthenticatedError(GovsignError):
    kind = ErrorKind.UNAUTHENTICATED


class ForbiddenError(GovsignError):
    kind = ErrorKind.FORBIDDEN


class RateLimitedError(GovsignError):
    kind = ErrorKind.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
