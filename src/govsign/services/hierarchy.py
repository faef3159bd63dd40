"""CA administration: the hierarchy created by ``govsign init``, the CAs and their published
certificates, and CRL publication on request (under dual control by default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from govsign.access.policy import Permission
from govsign.errors import GovsignError
from govsign.pki.authority import Progress
from govsign.pki.crl import PublishedCRLs
from govsign.pki.hierarchy import HierarchyResult, HierarchySpec
from govsign.pki.issuer import PublicURLs
from govsign.pki.records import CARecord
from govsign.services.approvals import PUBLISH_CRLS, DualControl
from govsign.services.authorization import Authorization, Requester
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.approvals import ApprovalRecord
from govsign.storage.engine import Database


class Hierarchy:
    """The CAs of this service."""

    def __init__(
        self,
        *,
        database: Database,
        uow: UnitOfWork,
        authorization: Authorization,
        dual_control: DualControl,
        publish_crls: Callable[[], Mapping[str, PublishedCRLs]],
    ) -> None:
        self._database = database
        self._uow = uow
        self._authorization = authorization
        self._dual_control = dual_control
        self._publish_crls = publish_crls

    @property
    def urls(self) -> PublicURLs:
        """Where relying parties find the CAs' certificates, CRLs and OCSP."""
        return self._uow.policy.urls

    def initialize(self, spec: HierarchySpec, *, actor: str, progress: Progress | None = None) -> HierarchyResult:
        """Create the root CA, the issuing CA and its service certificates once (idempotent)."""
        return self._uow.run(
            lambda work: work.hierarchy.initialize(spec, actor=actor),
            action="ca.init",
            requester=Requester.operator(actor),
            object_id="hierarchy",
            progress=progress,
        )

    def list_cas(self, requester: Requester | None = None) -> list[CARecord]:
        if requester is not None:
            self._authorization.check_role(requester, Permission.CA_READ)
        with self._database.read_only() as ports:
            return ports.cas.list_cas()

    def ca_certificate(self, ca_id: str) -> bytes | None:
        """The DER certificate of a CA (published at its AIA caIssuers URL), or None."""
        with self._database.read_only() as ports:
            ca = ports.cas.get_ca(ca_id)
            return ca.certificate_der if ca is not None else None

    def request_crl_publication(self, requester: Requester) -> Mapping[str, PublishedCRLs] | ApprovalRecord:
        """Publish fresh CRLs of every CA now, or file the request for a second administrator."""
        self._authorization.check_role(requester, Permission.CA_ADMINISTER)
        if not self._dual_control.applies(requester, "ca-administration"):
            try:
                return self._publish_crls()
            except GovsignError as exc:  # e.g. the HSM is unavailable: a refusal, audited
                self._uow.record_refusal("crl.publish", requester, "all", exc)
                raise

        def operation(work: Work) -> ApprovalRecord:
            return self._dual_control.request(
                work, operation=PUBLISH_CRLS, target="all", parameters={}, agency_id=None, requester=requester
            )

        return self._uow.run(operation, action="crl.publish", requester=requester, object_id="all")
