"""Remote signing for signing apps and document systems (the use cases behind the Cloud Signature
Consortium API): short-lived access tokens for API clients, the credentials a client may use,
their authorization (the SAD) and signatures over hashes the client computed.

The SAD of an official's credential (``individual``, SCAL 2) is the official's signature
activation (:class:`~govsign.services.sole_control.SoleControl`): bound to the credential, the
client and exactly the authorized hashes, single use, at most five minutes, issued only with
every enrolled factor. Agency seals and devices (SCAL 1) get a SAD without factors, for a number
of signatures by the client, bound to hashes when the client names them. The signatures
themselves are made by :class:`~govsign.services.signatures.Signatures` (its checks, its audit
event), so a remote signature is the same act as one through ``/api/v1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509

from govsign.access.policy import Permission, Principal
from govsign.clock import Clock
from govsign.errors import GovsignError, InvalidInputError, NotFoundError, UnavailableError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateView
from govsign.pki.records import CertificateStatus
from govsign.services.audit_log import AuditLog
from govsign.services.authentication import principal_of
from govsign.services.authorization import Authorization, Requester
from govsign.services.signing_credentials import SIGNING_PROFILES, check_may_sign, needs_activation
from govsign.services.sole_control import ActivationRequest, SoleControl
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.access import RemoteAccessTokenRecord

if TYPE_CHECKING:
    from govsign.services.signatures import Signatures
    from govsign.services.status import TimeStampService

ACCESS_TOKEN_PREFIX = "gsc_"  # noqa: S105 - a prefix, not a secret
#: Lifetime of a remote-signing access token (CSC's default ``expires_in``).
ACCESS_TOKEN_SECONDS = 3600
#: The most hashes one signHash request signs (and one authorization covers).
MAX_BATCH = 100


@dataclass(frozen=True, kw_only=True)
class AccessGrant:
    """A remote-signing access token, shown once."""

    token: str
    """The bearer token (only its SHA-256 is kept)."""
    expires_in: int
    """Seconds until it stops working."""


@dataclass(frozen=True, kw_only=True)
class RemoteCredential:
    """What a client learns of a credential it may sign with."""

    credential_id: str
    """The certificate's serial (hex): the CSC credentialID."""
    profile: str
    """individual, organization or device."""
    scal: int
    """2 for an official's credential (the SAD is bound to hashes and needs the official's
    factors), 1 for an agency seal or device."""
    status: CertificateStatus
    """The certificate's status now."""
    certificate_der: bytes
    """The signer's certificate."""
    chain_der: tuple[bytes, ...]
    """The CA certificates above it, issuing CA first."""
    key_algorithm: KeyAlgorithm
    """The key's type and size."""
    pin: bool
    """The official has a PIN (asked by ``authorize``)."""
    otp: bool
    """The official has a TOTP seed (its current code is asked by ``authorize``)."""
    subject: str
    """The certificate's subject (RFC 4514)."""
    issuer: str
    """Its issuer (RFC 4514)."""
    not_before: dt.datetime
    """Start of validity."""
    not_after: dt.datetime
    """End of validity."""

    @property
    def key_bits(self) -> int:
        """The key's length in bits (the RSA modulus, or the curve's order)."""
        if self.key_algorithm.is_rsa:
            return self.key_algorithm.rsa_bits
        return 384 if self.key_algorithm is KeyAlgorithm.EC_P384 else 256


@dataclass(frozen=True, kw_only=True)
class SignatureAuthorization:
    """The SAD: a single-use authorization to sign with one credential."""

    sad: str
    """The token to give back with the signing request (only its hash is kept)."""
    expires_in: int
    """Seconds until it expires."""
    count: int
    """How many signatures it allows."""


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    """What a client asks to authorize, with the official's factors for an official's key."""

    count: int
    """How many signatures (numSignatures)."""
    hash_algorithm: str | None = None
    """Algorithm of ``hashes`` (sha256, sha384, sha512)."""
    hashes: Sequence[bytes] = ()
    """The hashes to bind the SAD to (required for an official's credential)."""
    pin: str | None = None
    """The official's PIN."""
    otp: str | None = None
    """The official's current TOTP code."""


@dataclass(frozen=True, kw_only=True)
class HashSigningRequest:
    """Signatures over hashes under a SAD."""

    credential_id: str
    """The credential (certificate serial, hex)."""
    sad: str
    """The authorization from :meth:`RemoteSigning.authorize`."""
    hash_algorithm: str
    """Algorithm of the hashes."""
    hashes: Sequence[bytes]
    """The hashes, 1 to 100."""
    signature_scheme: Scheme
    """How to sign: RSA PKCS#1 v1.5 or RSASSA-PSS with an RSA key, ECDSA with an EC key."""


Scheme = Literal["rsa-pkcs1v15", "rsa-pss", "ecdsa"]
Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]


@dataclass(frozen=True, kw_only=True)
class DocumentToSign:
    """One whole document of a signDoc request."""

    content: bytes
    """The document."""
    signature_format: Literal["P", "C"]
    """P: PAdES (the signed PDF is returned); C: a detached CAdES signature."""
    level: Level
    """The baseline level (CAdES up to B-LT)."""
    signature_scheme: Scheme
    """How to sign."""
    certify: bool = False
    """PAdES: a certification signature (envelope property Certification)."""
    appearance: Mapping[str, Any] = field(default_factory=dict)
    """PAdES: the visible stamp and field parameters of
    :class:`~govsign.services.signatures.PDFSigningRequest` (stamp, title_text, name_text,
    stamp_page, stamp_box, document_number, copy_form, copy_agency, seal_diameter_mm,
    field_name, reason, location, verification_line)."""


@dataclass(frozen=True, kw_only=True)
class DigestsToSign:
    """Document digests of a signDoc request, each signed as a detached CAdES signature."""

    hashes: Sequence[bytes]
    """The documents' digests."""
    hash_algorithm: str
    """Their algorithm."""
    level: Level
    """The baseline level (up to B-LT)."""
    signature_scheme: Scheme
    """How to sign."""


@dataclass(frozen=True, kw_only=True)
class DocumentSigningRequest:
    """Documents and digests to sign under one SAD."""

    credential_id: str
    """The credential."""
    sad: str
    """The authorization."""
    documents: Sequence[DocumentToSign] = ()
    """Whole documents, in order."""
    digests: Sequence[DigestsToSign] = ()
    """Digest groups, in order."""


@dataclass(frozen=True, kw_only=True)
class SignedDocuments:
    """What signDoc returns."""

    documents_with_signature: list[bytes]
    """The signed PDFs (PAdES), in the order of the documents."""
    signature_objects: list[bytes]
    """The detached CAdES signatures: of the CAdES documents, then of each digest."""


def access_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class RemoteSigning:
    """The remote-signing use cases (the CSC API's operations)."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        clock: Clock,
        authorization: Authorization,
        audit: AuditLog,
        sole_control: SoleControl,
        signatures: Signatures,
        timestamps: TimeStampService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authorization = authorization
        self._audit = audit
        self._sole_control = sole_control
        self._signatures = signatures
        self._timestamps = timestamps

    # -- access tokens --------------------------------------------------------------------------

    def login(self, requester: Requester) -> AccessGrant:
        """A new access token for the authenticated client (its govsign token or certificate)."""
        principal = requester.principal
        assert principal is not None, "access tokens are given to API clients"
        self._authorization.check_role(requester, Permission.SIGN)
        token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        with self._uow.transaction(requester.context) as work:
            work.ports.access.add_remote_token(
                RemoteAccessTokenRecord(
                    token_sha256=access_token_hash(token),
                    client_id=principal.client_id,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=ACCESS_TOKEN_SECONDS),
                    revoked_at=None,
                )
            )
            work.ports.access.purge_remote_tokens(expired_before=now - dt.timedelta(days=1))
            work.audit.record(
                "remote.login",
                actor=requester.actor,
                object_type="api_client",
                object_id=principal.client_id,
                details={"expires_in": ACCESS_TOKEN_SECONDS, "token_sha256": access_token_hash(token)},
            )
        return AccessGrant(token=token, expires_in=ACCESS_TOKEN_SECONDS)

    def revoke(self, requester: Requester, token: str) -> None:
        """Revoke one of the client's own access tokens (the one in use when ``token`` is it)."""
        principal = requester.principal
        assert principal is not None
        now = self._clock.now()
        with self._uow.transaction(requester.context) as work:
            if not work.ports.access.revoke_remote_token(access_token_hash(token), principal.client_id, now):
                raise InvalidInputError("The token is not an active access token of this client.")
            work.audit.record(
                "remote.logout",
                actor=requester.actor,
                object_type="api_client",
                object_id=principal.client_id,
                details={"token_sha256": access_token_hash(token)},
            )

    def principal_for(self, token: str) -> Principal | None:
        """The active client behind an unexpired, unrevoked access token (None otherwise)."""
        if not token.startswith(ACCESS_TOKEN_PREFIX):
            return None
        with self._uow.reading() as work:
            stored = work.ports.access.remote_token(access_token_hash(token))
            if stored is None or stored.revoked_at is not None or stored.expires_at <= self._clock.now():
                return None
            client = work.ports.access.get_client(stored.client_id)
        if client is None or client.status != "active":
            return None
        return principal_of(client)

    # -- credentials ----------------------------------------------------------------------------

    def credential_ids(self, requester: Requester, *, user_id: str | None = None, limit: int = 100) -> list[str]:
        """The valid credentials with keys in our HSM that the client may sign with (its agency
        and sub-units), oldest first; with ``user_id``, only the official's whose certificate
        carries that UID (e.g. ``CCCD:077190000123``)."""
        self._authorization.check_role(requester, Permission.SIGN)
        scope = self._authorization.visible_agencies(requester)
        if not 1 <= limit <= 1000:
            raise InvalidInputError("maxResults must be between 1 and 1000.")
        with self._uow.reading() as work:
            records = work.ports.certificates.search_certificates(
                now=self._clock.now(),
                status=CertificateStatus.VALID,
                agency_ids=scope,
                subject_contains=f"UID={user_id}" if user_id else None,
                limit=5000,
            )
        found = [
            record.serial_hex
            for record in records
            if record.key is not None
            and record.profile in SIGNING_PROFILES
            and (user_id is None or user_id in _uids(record.certificate_der))
        ]
        return found[:limit]

    def credential(self, requester: Requester, credential_id: str) -> RemoteCredential:
        """One credential the client may sign with, its chain and how it is authorized."""
        with self._uow.reading() as work:
            view = _found(work, credential_id)
            self._authorization.check(requester, Permission.SIGN, agency_id=view.record.agency_id)
            record = view.record
            if record.key is None or record.profile not in SIGNING_PROFILES:
                raise NotFoundError(f"No signing credential {credential_id} is held by this service.")
            chain: list[bytes] = []
            ca = work.ports.cas.get_ca(record.issuer_id)
            while ca is not None:
                chain.append(ca.certificate_der)
                ca = work.ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
            factors = work.ports.sole_control.factors(record.id) if record.id is not None else None
        certificate = x509.load_der_x509_certificate(record.certificate_der)
        official = needs_activation(view)
        return RemoteCredential(
            credential_id=record.serial_hex,
            profile=record.profile,
            scal=2 if official else 1,
            status=view.status,
            certificate_der=record.certificate_der,
            chain_der=tuple(chain),
            key_algorithm=record.key_algorithm,
            pin=bool(official and factors is not None and factors.pin_hash),
            otp=bool(official and factors is not None and factors.totp_label),
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            not_before=record.not_before,
            not_after=record.not_after,
        )

    # -- authorization and signing ------------------------------------------------------------

    def authorize(
        self, requester: Requester, credential_id: str, request: AuthorizationRequest
    ) -> SignatureAuthorization:
        """The SAD for ``request.count`` signatures: the official's activation for exactly the
        hashes (with every enrolled factor), or a seal's or device's authorization without factors."""
        with self._uow.reading() as work:
            official = needs_activation(_found(work, credential_id))
        if official:
            if not request.hashes:
                raise InvalidInputError(
                    "An official's credential (SCAL 2) is authorized for exactly the hashes to sign: give them."
                )
            grant = self._sole_control.activate(
                credential_id,
                requester,
                ActivationRequest(
                    hash_algorithm=request.hash_algorithm or "",
                    hashes=request.hashes,
                    count=request.count,
                    otp=request.otp,
                    pin=request.pin,
                ),
            )
        else:
            grant = self._sole_control.authorize_without_factors(
                credential_id,
                requester,
                count=request.count,
                hash_algorithm=request.hash_algorithm,
                hashes=request.hashes,
            )
        seconds = max(1, int((grant.expires_at - self._clock.now()).total_seconds()))
        return SignatureAuthorization(sad=grant.token, expires_in=seconds, count=grant.count)

    def extend(self, requester: Requester, credential_id: str, sad: str) -> SignatureAuthorization:
        """A fresh SAD for the same signatures (seals and devices; an official authorizes again)."""
        grant = self._sole_control.extend(credential_id, requester, sad)
        seconds = max(1, int((grant.expires_at - self._clock.now()).total_seconds()))
        return SignatureAuthorization(sad=grant.token, expires_in=seconds, count=grant.count)

    def sign_hashes(self, requester: Requester, request: HashSigningRequest) -> list[bytes]:
        """The bare signatures (PKCS#1 v1.5, RSASSA-PSS or DER ECDSA) over the hashes, in order,
        when the SAD allows exactly them; each refusal is audited and signs nothing."""
        from govsign.services.signatures import DigestSigningRequest

        hashes = list(request.hashes)
        scheme = request.signature_scheme
        try:
            if not 1 <= len(hashes) <= MAX_BATCH:
                raise InvalidInputError(f"A signing request carries 1 to {MAX_BATCH} hashes.")
            with self._uow.reading() as work:
                view = _found(work, request.credential_id)
            _check_scheme(view, scheme)
        except GovsignError as exc:
            self._audit.record_refusal("signature.create", requester, request.credential_id, exc)
            raise
        official = needs_activation(view)
        signing = DigestSigningRequest(
            credential=request.credential_id,
            digest_algorithm=request.hash_algorithm,
            digests=tuple(hashes),
            output="raw",
            signature_algorithm=None if scheme == "ecdsa" else scheme,
        )
        if not official:
            self._use_unattended_authorization(requester, request)
        return self._signatures.sign_digests(signing, requester, request.sad if official else None)

    def _use_unattended_authorization(self, requester: Requester, request: HashSigningRequest) -> None:
        """Use up the SAD of a seal or device credential (its signing needs no activation through
        ``/api/v1``, but through this API it signs only what its SAD allows)."""
        try:
            with self._uow.transaction(requester.context) as work:
                view = _found(work, request.credential_id)
                self._authorization.check(requester, Permission.SIGN, agency_id=view.record.agency_id)
                check_may_sign(view)
                self._sole_control.consume(
                    work.ports,
                    view,
                    requester,
                    request.sad,
                    lambda _algorithm: (request.hash_algorithm, list(request.hashes)),
                )
        except GovsignError as exc:
            self._audit.record_refusal("signature.create", requester, request.credential_id, exc)
            raise

    def sign_documents(self, requester: Requester, request: DocumentSigningRequest) -> SignedDocuments:
        """PAdES and CAdES signatures of whole documents and of document digests under one SAD
        (CSC ``signDoc``), through the same signing service as ``/api/v1``. An official's SAD
        must cover the SHA-256 of each document and the digests of each digest group: it is used
        up at once and each signing uses its own part of it; a seal's or device's SAD allows one
        signature per document and per digest."""
        from govsign.services.documents import SpooledDocument
        from govsign.services.signatures import CMSSigningRequest, DigestSigningRequest, PDFSigningRequest

        count = len(request.documents) + sum(len(group.hashes) for group in request.digests)
        try:
            if not 1 <= count <= MAX_BATCH:
                raise InvalidInputError(f"A signDoc request signs 1 to {MAX_BATCH} documents and digests.")
            with self._uow.reading() as work:
                view = _found(work, request.credential_id)
            schemes = [item.signature_scheme for item in request.documents]
            for wanted in [*schemes, *(group.signature_scheme for group in request.digests)]:
                _check_scheme(view, wanted)
            if any(group.hash_algorithm != "sha256" for group in request.digests) and needs_activation(view):
                raise InvalidInputError("An official's SAD covers SHA-256 hashes: give the digests in SHA-256.")
        except GovsignError as exc:
            self._audit.record_refusal("signature.create", requester, request.credential_id, exc)
            raise
        spooled = [SpooledDocument.of(item.content) for item in request.documents]
        groups = [[document.digest("sha256")] for document in spooled] + [list(g.hashes) for g in request.digests]
        tokens = self._use_authorization_for(requester, request.credential_id, request.sad, groups)
        with_signature: list[bytes] = []
        signature_objects: list[bytes] = []
        for index, (item, document) in enumerate(zip(request.documents, spooled, strict=True)):
            scheme = None if item.signature_scheme == "ecdsa" else item.signature_scheme
            if item.signature_format == "P":
                signed = self._signatures.sign_pdf(
                    document,
                    PDFSigningRequest(
                        **item.appearance,
                        credential=request.credential_id,
                        level=item.level,
                        certify=item.certify,
                        signature_algorithm=scheme,
                    ),
                    requester,
                    tokens[index],
                )
                assert signed.data is not None  # a document given inline is small enough to sign in memory
                with_signature.append(signed.data)
            else:
                if item.level == "B-LTA":
                    raise InvalidInputError("CAdES signatures are made up to B-LT.")
                cms = self._signatures.sign_cms(
                    document,
                    CMSSigningRequest(credential=request.credential_id, level=item.level, signature_algorithm=scheme),  # type: ignore[arg-type]
                    requester,
                    tokens[index],
                )
                signature_objects.append(cms.data)
        for offset, group in enumerate(request.digests):
            if group.level == "B-LTA":
                raise InvalidInputError("CAdES signatures are made up to B-LT.")
            signature_objects.extend(
                self._signatures.sign_digests(
                    DigestSigningRequest(
                        credential=request.credential_id,
                        digest_algorithm=group.hash_algorithm,
                        digests=tuple(group.hashes),
                        output="cms",
                        level=group.level,  # type: ignore[arg-type]
                        signature_algorithm=None if group.signature_scheme == "ecdsa" else group.signature_scheme,
                    ),
                    requester,
                    tokens[len(request.documents) + offset],
                )
            )
        return SignedDocuments(documents_with_signature=with_signature, signature_objects=signature_objects)

    def _use_authorization_for(
        self, requester: Requester, credential_id: str, sad: str, groups: Sequence[Sequence[bytes]]
    ) -> list[str | None]:
        """Use up the SAD for these hash groups: an official's is split into one activation per
        group (returned); a seal's or device's is used up for as many signatures (None each)."""
        flat = [value for group in groups for value in group]
        try:
            with self._uow.transaction(requester.context) as work:
                view = _found(work, credential_id)
                self._authorization.check(requester, Permission.SIGN, agency_id=view.record.agency_id)
                check_may_sign(view)
                if needs_activation(view):
                    return list(self._sole_control.split(work.ports, view, requester, sad, "sha256", groups))
                self._sole_control.consume(work.ports, view, requester, sad, lambda _algorithm: ("sha256", flat))
                return [None] * len(groups)
        except GovsignError as exc:
            self._audit.record_refusal("signature.create", requester, credential_id, exc)
            raise

    # -- time-stamps ----------------------------------------------------------------------------

    def timestamp(self, requester: Requester, digest: bytes, hash_algorithm: str, nonce: int | None) -> bytes:
        """An RFC 3161 time-stamp token (DER ContentInfo) over ``digest`` from our TSA."""
        from asn1crypto import algos, tsp

        self._authorization.check_role(requester, Permission.SIGN)
        sizes = {"sha256": 32, "sha384": 48, "sha512": 64}
        if sizes.get(hash_algorithm) != len(digest):
            raise InvalidInputError(f"The hash must be a {'/'.join(sizes)} digest of the right length.")
        fields: dict[str, object] = {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_algorithm}),
                "hashed_message": digest,
            },
            "cert_req": True,
        }
        if nonce is not None:
            fields["nonce"] = nonce
        answer = tsp.TimeStampResp.load(self._timestamps.answer(tsp.TimeStampReq(fields).dump()))
        if answer["status"]["status"].native not in ("granted", "granted_with_mods"):
            raise UnavailableError("The time-stamping authority could not time-stamp the hash now.")
        return bytes(answer["time_stamp_token"].dump())


def _found(work: Work, credential_id: str) -> CertificateView:
    """The credential by its serial; a clear error for a malformed or unknown identifier."""
    if not isinstance(credential_id, str) or not credential_id.strip():
        raise InvalidInputError("The credentialID is missing.")
    try:
        return work.ca.show(credential_id.strip())
    except InvalidInputError as exc:
        raise InvalidInputError(f"The credentialID is not valid: {exc.message}") from exc


def _check_scheme(view: CertificateView, scheme: str) -> None:
    """ECDSA goes with an EC key, PKCS#1 v1.5 and RSASSA-PSS with an RSA key."""
    if (scheme == "ecdsa") == view.record.key_algorithm.is_rsa:
        key = "an RSA" if view.record.key_algorithm.is_rsa else "an EC"
        raise InvalidInputError(f"Invalid parameter signAlgo: the credential has {key} key.")


def _uids(certificate_der: bytes) -> set[str]:
    name = x509.load_der_x509_certificate(certificate_der).subject
    return {str(attribute.value) for attribute in name.get_attributes_for_oid(x509.NameOID.USER_ID)}
