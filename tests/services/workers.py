"""Code run in child processes (multiprocessing, spawn): each child loads SoftHSM2 itself and
logs in once, as a worker process of the service does. Results go back through a queue as
plain data; a child never raises into the parent, it reports the error text."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from govsign.clock import FixedClock, SystemClock
from govsign.config import Settings
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.hierarchy import HierarchySpec
from govsign.pki.records import RevocationReason
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services


def revoke_and_publish(settings_values: dict[str, Any], csrs: list[bytes], barrier: Any, results: Any) -> None:
    """Issue, revoke and publish (forced) once per CSR; report the CRL numbers published."""
    published: list[tuple[str, int, int]] = []
    error = None
    services = None
    try:
        from helpers.ca import issue_from_csr as issue
        from helpers.ca import revoke

        services = Services.open(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
        barrier.wait(timeout=60)
        for csr in csrs:
            issued = issue(services, csr)
            revoke(services, issued.record.serial_hex, RevocationReason.SUPERSEDED)
            for ca_id, result in services.crls.publish(force=True).items():
                published.append((ca_id, result.full.number, result.delta.number))
    except BaseException:
        error = traceback.format_exc()
    finally:
        if services is not None:
            services.close()
    results.put({"pid": os.getpid(), "published": published, "error": error})


UNPLUG_HIERARCHY = HierarchySpec(
    root_algorithm=KeyAlgorithm.EC_P256,
    root_validity_years=4,
    issuing_algorithm=KeyAlgorithm.EC_P256,
    issuing_validity_years=3,
    service_algorithm=KeyAlgorithm.EC_P256,
)


def answers_with_the_token_gone(data_dir: str, csrs: list[bytes], results: Any) -> None:
    """A service with its own embedded SoftHSM2 token whose token store is moved away while the
    process runs (as when an HSM's storage or slot disappears): SoftHSM2 then refuses every key
    operation, the database still works. Reports what OCSP answers before and after."""
    from cryptography import x509

    from helpers.ca import ACTOR, revoke
    from helpers.ca import issue_from_csr as issue
    from helpers.protocols import cryptography_request, response_status

    report: dict[str, Any] = {"error": None}
    try:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=Path(data_dir),
            database_url=None,
            pkcs11_module=None,
            hsm_token_label="govsign",
            hsm_pin=SecretStr("unplug-test-pin-0000"),
            hsm_pin_file=None,
            public_base_url="http://pki.example.gov.vn",
        )
        services = Services.open(settings, initialize=True, clock=FixedClock(SystemClock().now()))
        hierarchy = services.uow.run(
            lambda work: work.hierarchy.initialize(UNPLUG_HIERARCHY, actor=ACTOR),
            action="ca.init",
            requester=Requester.operator(ACTOR),
            object_id="h",
        )
        issuing = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
        kept, revoked_later = (issue(services, csr) for csr in csrs)
        plain = cryptography_request(kept.certificate, issuing)
        with_nonce = cryptography_request(kept.certificate, issuing, nonce=os.urandom(16))
        report["before_nonce"] = response_status(services.ocsp.answer(with_nonce).der)

        os.rename(settings.token_dir, Path(data_dir) / "tokens.unplugged")

        answer = services.ocsp.answer(with_nonce)
        report["nonce"] = (answer.status, response_status(answer.der))
        answer = services.ocsp.answer(plain)
        report["plain"] = (answer.status, answer.pre_produced, answer.der)
        # A revocation while the HSM is away must not leave a stale "good" in the store.
        revoke(services, revoked_later.record.serial_hex, RevocationReason.KEY_COMPROMISE)
        answer = services.ocsp.answer(cryptography_request(revoked_later.certificate, issuing))
        report["after_revocation"] = (answer.status, answer.pre_produced)
        try:
            services.crls.publish(force=True)
            report["publish"] = "published"
        except Exception as exc:
            report["publish"] = type(exc).__name__
        report["issuing_der"] = hierarchy.issuing.certificate_der
        report["kept_serial"] = kept.certificate.serial_number
        report["at"] = services.clock.now().isoformat()
        services.close()
    except BaseException:
        report["error"] = traceback.format_exc()
    results.put(report)


class _StallingLinter:
    """A pre-issuance linter that says so and then never returns: the issuance is stopped after
    its key was generated in the HSM and before its certificate is signed and committed."""

    def __init__(self, reached: Any) -> None:
        self._reached = reached

    def lint(self, certificate_der: bytes) -> list[Any]:
        import time

        self._reached.set()
        time.sleep(600)
        return []


def issue_until_killed(settings_values: dict[str, Any], subject: str, reached: Any, results: Any) -> None:
    """Enrol a subscriber with a key generated in the HSM and stall in the linter, to be killed
    with SIGKILL there (an issuance interrupted by a crash)."""
    services = None
    try:
        from govsign.pki.issuance import IssuanceRequest

        services = Services.open(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
        services.uow._linter = _StallingLinter(reached)
        services.certificates.enrol(
            IssuanceRequest(profile="individual", subject=subject, key_algorithm=KeyAlgorithm.EC_P256),
            Requester.operator("operator:crash-test"),
        )
        results.put({"pid": os.getpid(), "error": "the issuance was not stopped"})
    except BaseException:
        results.put({"pid": os.getpid(), "error": traceback.format_exc()})
    finally:
        if services is not None:
            services.close()
