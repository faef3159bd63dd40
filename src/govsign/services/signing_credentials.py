"""Which credentials may sign: the one rule, used by every signing path and by sole control.

A credential signs when its key is in this service's HSM, its certificate is valid now (not
revoked, on hold or expired) and its profile is one that signs documents: an agency seal
(``organization``), a ``device``, or an official (``individual``, whose key is under the
official's sole control and signs only with a signature activation).
"""

from __future__ import annotations

from govsign.errors import ConflictError, InvalidInputError, PolicyViolationError
from govsign.pki.authority import CertificateView
from govsign.pki.records import CertificateStatus
from govsign.signing.cms import SigningCredential
from govsign.storage.ports import SQLPorts

#: The profile whose keys are under an official's sole control.
SOLE_CONTROL_PROFILE = "individual"
#: The profiles whose certificates sign documents.
SIGNING_PROFILES = frozenset({"organization", "device", SOLE_CONTROL_PROFILE})

_STATUS_REFUSALS = {
    CertificateStatus.REVOKED: "The signing certificate is revoked and can no longer sign.",
    CertificateStatus.ON_HOLD: "The signing certificate is on hold and cannot sign until it is released.",
    CertificateStatus.EXPIRED: "The signing certificate has expired and can no longer sign.",
}


def check_may_sign(view: CertificateView) -> None:
    """Raise unless the credential may sign now (the key, the status, the profile)."""
    record = view.record
    if record.key is None:
        raise InvalidInputError("The credential's key is not held in the HSM of this service, so it cannot sign.")
    refusal = _STATUS_REFUSALS.get(view.status)
    if refusal is not None:
        raise ConflictError(refusal)
    if record.profile not in SIGNING_PROFILES:
        raise PolicyViolationError(f"Certificates of the {record.profile} profile cannot sign documents.")


def needs_activation(view: CertificateView) -> bool:
    """True for an official's credential: it signs only with the official's signature activation."""
    return view.record.profile == SOLE_CONTROL_PROFILE


def signing_credential(ports: SQLPorts, view: CertificateView) -> SigningCredential:
    """The signing cores' view of a credential that may sign: its key, certificate and CA chain."""
    record = view.record
    assert record.key is not None
    chain: list[bytes] = []
    ca = ports.cas.get_ca(record.issuer_id)
    while ca is not None:
        chain.append(ca.certificate_der)
        ca = ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
    return SigningCredential(key=record.key, certificate_der=record.certificate_der, chain_der=tuple(chain))
