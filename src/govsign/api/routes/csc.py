# ruff: noqa: N815 - the request and response fields carry the CSC API's names (credentialID, SAD...)
"""The Cloud Signature Consortium API for remote signing: ``/csc/v2`` (CSC API 2.0, ETSI TS 119 432)
and ``/csc/v1`` (CSC API 1.0.4, the field names of the clients that exist: pyHanko's CSCSigner,
MySign-style apps). Both are thin front ends over :mod:`govsign.services.remote_signing`; the
protocol's object identifiers and field names are translated here.

Errors follow the CSC API: ``{"error": ..., "error_description": ...}`` (see
:func:`govsign.api.problems.csc_error`), never a problem document.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from govsign import __version__
from govsign.access.policy import Principal
from govsign.api.deps import authenticated, get_services, requester, source_address
from govsign.api.schemas.resources import PDFAppearance
from govsign.errors import InvalidInputError, RateLimitedError, UnauthenticatedError
from govsign.services.remote_signing import (
    AuthorizationRequest,
    HashSigningRequest,
    RemoteCredential,
)

router_v2 = APIRouter(prefix="/csc/v2", tags=["remote signing (CSC API v2)"])
router_v1 = APIRouter(prefix="/csc/v1", tags=["remote signing (CSC API v1)"])

#: Digest algorithms by OID, and back.
HASH_OIDS = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
OID_OF_HASH = {name: oid for oid, name in HASH_OIDS.items()}
_RSA = "1.2.840.113549.1.1.1"
_RSA_PSS = "1.2.840.113549.1.1.10"
_EC = "1.2.840.10045.2.1"
#: signAlgo OIDs: the key algorithm (with hashAlgo separate) or a signature algorithm naming its hash.
SIGN_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    _RSA: ("rsa-pkcs1v15", None),
    "1.2.840.113549.1.1.11": ("rsa-pkcs1v15", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa-pkcs1v15", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa-pkcs1v15", "sha512"),
    _RSA_PSS: ("rsa-pss", None),
    _EC: ("ecdsa", None),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
}
_RSA_ALGOS = [_RSA, "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", _RSA_PSS]
_EC_ALGOS = [_EC, "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"]
#: The most signatures one authorization (and one signHash request) covers.
MULTISIGN = 100


class _Body(BaseModel):
    # CSC clients send fields this service has no use for (clientData, lang, description):
    # they are accepted and ignored, as the specification lets a server do.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CSCErrorBody(BaseModel):
    """A CSC API error."""

    error: str = Field(
        description="invalid_request, invalid_token, access_denied, temporarily_unavailable, server_error."
    )
    error_description: str = Field(description="What is wrong, in one sentence.")


CSC_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": CSCErrorBody, "description": meaning}
    for status, meaning in (
        (400, "The request is malformed, or refused (unknown credential, SAD not valid for it)."),
        (401, "No valid access token (invalid_token)."),
        (403, "The client may not use the credential, or the official's factors are wrong (access_denied)."),
        (429, "The official's factors are locked after wrong attempts."),
        (503, "The HSM or database cannot be reached now (temporarily_unavailable)."),
    )
}


class InfoResponse(BaseModel):
    specs: str = Field(description="The CSC API version implemented (2.0.0.2 or 1.0.4.0).")
    name: str
    logo: str
    region: str
    lang: str
    description: str
    authType: list[str] = Field(description="How clients authenticate: basic (auth/login), oauth2client.")
    methods: list[str] = Field(description="The operations offered.")
    oauth2: str | None = Field(None, description="v2: base URI of the OAuth 2.0 token endpoint.")
    signAlgorithms: dict[str, Any] | None = Field(None, description="v2: the signature algorithm OIDs.")
    signature_formats: dict[str, Any] | None = Field(None, description="v2: signDoc formats (P, C) and envelopes.")
    conformance_levels: list[str] | None = Field(None, description="v2: signDoc levels, Ades-B-B to Ades-B-LTA.")


class KeyInfo(BaseModel):
    status: Literal["enabled", "disabled"]
    algo: list[str] = Field(description="OIDs of the signature algorithms the key signs with.")
    len: int = Field(description="Key length in bits.")
    curve: str | None = Field(None, description="EC keys: the curve's OID.")


class CertInfo(BaseModel):
    status: str = Field(description="valid, revoked, suspended or expired.")
    certificates: list[str] = Field(description="Base64 DER: the signer's certificate first, then its CAs.")
    issuerDN: str | None = None
    serialNumber: str | None = None
    subjectDN: str | None = None
    validFrom: str | None = Field(None, description="GeneralizedTime, UTC.")
    validTo: str | None = Field(None, description="GeneralizedTime, UTC.")


class CredentialInfoV1(BaseModel):
    description: str
    key: KeyInfo
    cert: CertInfo
    authMode: Literal["explicit"]
    SCAL: Literal["1", "2"] = Field(description="2: an official's key (SAD bound to hashes, factors required).")
    multisign: int = Field(description="The most signatures per authorization and per signHash.")
    lang: str
    PIN: dict[str, Any] | None = Field(None, description="The PIN: presence, format, label.")
    OTP: dict[str, Any] | None = Field(None, description="The TOTP code: presence, type offline, format.")


class CredentialInfoV2(BaseModel):
    description: str
    key: KeyInfo
    cert: CertInfo
    SCAL: Literal["1", "2"]
    multisign: int
    lang: str
    auth: dict[str, Any] | None = Field(None, description="With authInfo: mode explicit, expression, objects.")


class ListResponseV2(BaseModel):
    credentialIDs: list[str]
    onlyValid: bool
    credentialInfos: list[dict[str, Any]] | None = Field(None, description="With credentialInfo: each one's info.")


# -- common pieces -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise InvalidInputError(f"Invalid parameter {what}: not base64.") from None


def _hash_algorithm(oid: str | None, what: str) -> str:
    if oid is None:
        raise InvalidInputError(f"Missing parameter {what}.")
    name = HASH_OIDS.get(oid.strip())
    if name is None:
        raise InvalidInputError(f"Invalid parameter {what}: use the OID of SHA-256, SHA-384 or SHA-512.")
    return name


def _signature_algorithm(sign_algo: str, sign_algo_params: str | None, hash_algorithm: str) -> str:
    """Our name of the CSC ``signAlgo`` (rsa-pkcs1v15, rsa-pss or ecdsa), checked against the hash."""
    known = SIGN_ALGORITHMS.get(sign_algo.strip())
    if known is None:
        raise InvalidInputError("Invalid parameter signAlgo: use RSA (PKCS#1 v1.5 or RSASSA-PSS) or ECDSA.")
    scheme, implied_hash = known
    if implied_hash is not None and implied_hash != hash_algorithm:
        raise InvalidInputError("Invalid parameter signAlgo: it names another hash than hashAlgo.")
    if scheme == "rsa-pss" and sign_algo_params is not None:
        _check_pss_parameters(_unb64(sign_algo_params, "signAlgoParams"), hash_algorithm)
    return scheme


def _check_pss_parameters(der: bytes, hash_algorithm: str) -> None:
    """RSASSA-PSS parameters must be the ones the service signs with: the hash, MGF1 with the
    same hash, a salt as long as the hash, trailer field 1."""
    from asn1crypto import algos

    sizes = {"sha256": 32, "sha384": 48, "sha512": 64}
    try:
        params = algos.RSASSAPSSParams.load(der)
        native = params.native
    except (ValueError, TypeError):
        raise InvalidInputError("Invalid parameter signAlgoParams: not DER RSASSA-PSS-params.") from None
    mgf = native["mask_gen_algorithm"]
    if (
        native["hash_algorithm"]["algorithm"] != hash_algorithm
        or mgf["algorithm"] != "mgf1"
        or mgf["parameters"]["algorithm"] != hash_algorithm
        or native["salt_length"] != sizes[hash_algorithm]
        or native["trailer_field"] not in (1, "trailer_field_bc")
    ):
        raise InvalidInputError(
            "Invalid parameter signAlgoParams: RSASSA-PSS is signed with the hash of hashAlgo, MGF1 with the "
            "same hash and a salt as long as the hash."
        )


def _key_algorithms(credential: RemoteCredential) -> list[str]:
    return list(_RSA_ALGOS if credential.key_algorithm.is_rsa else _EC_ALGOS)


def _certificates(credential: RemoteCredential, which: str) -> list[str]:
    if which == "none":
        return []
    if which == "single":
        return [_b64(credential.certificate_der)]
    return [_b64(credential.certificate_der), *(_b64(ca) for ca in credential.chain_der)]


def _generalized(moment: Any) -> str:
    """A time as CSC writes it (ASN.1 GeneralizedTime text, UTC)."""
    return str(moment.strftime("%Y%m%d%H%M%SZ"))


def _cert_info(credential: RemoteCredential, which: str, with_info: bool) -> dict[str, Any]:
    status = {"valid": "valid", "revoked": "revoked", "on_hold": "suspended", "expired": "expired"}
    cert: dict[str, Any] = {"status": status.get(credential.status.value, credential.status.value)}
    cert["certificates"] = _certificates(credential, which)
    if with_info:
        cert |= {
            "issuerDN": credential.issuer,
            "serialNumber": credential.credential_id,
            "subjectDN": credential.subject,
            "validFrom": _generalized(credential.not_before),
            "validTo": _generalized(credential.not_after),
        }
    return cert


def _key_info(credential: RemoteCredential) -> dict[str, Any]:
    key: dict[str, Any] = {
        "status": "enabled" if credential.status.value == "valid" else "disabled",
        "algo": _key_algorithms(credential),
        "len": credential.key_bits,
    }
    if not credential.key_algorithm.is_rsa:
        key["curve"] = "1.3.132.0.34" if credential.key_bits == 384 else "1.2.840.10045.3.1.7"
    return key


async def _csc_caller(request: Request) -> Principal:
    """The client behind a CSC access token (``Authorization: Bearer gsc_...``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token.strip():
        principal = await asyncio.to_thread(get_services(request).remote_signing.principal_for, token.strip())
    if principal is None:
        # counted and audited with the other failed authentications (429 past the limit)
        wait = await asyncio.to_thread(get_services(request).authentication.record_failure, source_address(request))
        if wait:
            raise RateLimitedError("Too many failed authentications from this address; try again later.", wait)
        raise UnauthenticatedError(
            "The access token is missing, expired or revoked; get one from auth/login or oauth2/token."
        )
    request.state.principal = principal
    return principal


CSCCaller = Annotated[Principal, Depends(_csc_caller)]
LoginCaller = Annotated[Principal, Depends(authenticated)]


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _info(version: Literal["v1", "v2"], request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    methods = [
        "auth/login",
        "auth/revoke",
        "credentials/list",
        "credentials/info",
        "credentials/authorize",
        "credentials/extendTransaction",
        "signatures/signHash",
        "signatures/timestamp",
    ]
    info: dict[str, Any] = {
        "specs": "2.0.0.2" if version == "v2" else "1.0.4.0",
        "name": "govsign",
        "logo": f"{base}/csc/logo.png",
        "region": "VN",
        "lang": "vi-VN",
        "description": f"govsign remote signing: keys of officials and agencies in the HSM (version {__version__}).",
        "authType": ["basic", "oauth2client"] if version == "v2" else ["basic"],
        "methods": [
            *methods,
            *(["oauth2/token", "signatures/signDoc"] if version == "v2" else ["credentials/sendOTP"]),
        ],
    }
    if version == "v2":
        info["oauth2"] = f"{base}/csc/v2"
        info["signAlgorithms"] = {"algos": [*_RSA_ALGOS, *_EC_ALGOS]}
        info["signature_formats"] = {
            "formats": ["P", "C"],
            "envelope_properties": [["Certification", "Revision"], ["Detached"]],
        }
        info["conformance_levels"] = ["Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"]
    return info


# -- info, login, tokens -------------------------------------------------------------------------


class LoginRequest(_Body):
    rememberMe: bool = Field(False, description="Ignored: access tokens are short-lived and not refreshed.")


class LoginResponse(BaseModel):
    access_token: str = Field(description="The bearer token for the other CSC operations (shown once).")
    expires_in: int = Field(description="Seconds until the token expires.")


class RevokeRequest(_Body):
    token: str = Field(max_length=200, description="The access token to revoke.")
    token_type_hint: str | None = Field(
        None, max_length=40, description="access_token (refresh tokens are not issued)."
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="The bearer token (shown once).")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


def _register_common(router: APIRouter, version: Literal["v1", "v2"]) -> None:
    @router.post(
        "/info",
        operation_id=f"csc{version}Info",
        summary=f"CSC {version}: what this remote-signing service is and which operations it offers.",
        response_model=InfoResponse,
    )
    async def info(request: Request) -> JSONResponse:
        return _json(_info(version, request))

    @router.post(
        "/auth/login",
        operation_id=f"csc{version}Login",
        responses=CSC_ERRORS,
        summary=f"CSC {version}: exchange the API client's govsign token (or client certificate) for an access token.",
        response_model=LoginResponse,
    )
    async def login(request: Request, principal: LoginCaller) -> JSONResponse:
        grant = await asyncio.to_thread(get_services(request).remote_signing.login, requester(request, principal))
        return _json({"access_token": grant.token, "expires_in": grant.expires_in})

    @router.post(
        "/auth/revoke",
        operation_id=f"csc{version}Revoke",
        responses=CSC_ERRORS,
        summary=f"CSC {version}: revoke an access token of the calling client.",
        status_code=204,
        response_class=Response,
    )
    async def revoke(body: RevokeRequest, request: Request, principal: CSCCaller) -> Response:
        await asyncio.to_thread(get_services(request).remote_signing.revoke, requester(request, principal), body.token)
        return Response(status_code=204)


_register_common(router_v2, "v2")
_register_common(router_v1, "v1")


@router_v2.post(
    "/oauth2/token",
    operation_id="cscv2Token",
    responses=CSC_ERRORS,
    summary="CSC v2: OAuth 2.0 client_credentials grant: client_id and, as client_secret, the client's govsign token.",
    response_model=TokenResponse,
)
async def oauth2_token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=40)],
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    if grant_type != "client_credentials":
        raise InvalidInputError("Unsupported grant_type: this service issues tokens for client_credentials only.")
    services = get_services(request)
    if client_id is None or client_secret is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
    principal = (
        await asyncio.to_thread(services.authentication.authenticate_token, client_secret) if client_secret else None
    )
    if principal is None or client_id not in (principal.client_id, principal.client_name):
        wait = await asyncio.to_thread(services.authentication.record_failure, source_address(request), client_id)
        if wait:
            raise RateLimitedError("Too many failed authentications from this address; try again later.", wait)
        raise UnauthenticatedError("The client_id and client_secret do not name an active API client.")
    grant = await asyncio.to_thread(services.remote_signing.login, requester(request, principal))
    return _json({"access_token": grant.token, "token_type": "Bearer", "expires_in": grant.expires_in})


# -- credentials ---------------------------------------------------------------------------------


class ListRequest(_Body):
    userID: str | None = Field(
        None, max_length=60, description="Only this official's credentials (a UID, e.g. CCCD:077190000123)."
    )
    maxResults: int = Field(100, ge=1, le=1000, description="At most this many identifiers.")


class ListResponse(BaseModel):
    credentialIDs: list[str] = Field(description="The credentials the client may sign with (certificate serials).")


async def _list(request: Request, principal: Principal, body: ListRequest) -> list[str]:
    return await asyncio.to_thread(
        get_services(request).remote_signing.credential_ids,
        requester(request, principal),
        user_id=body.userID,
        limit=body.maxResults,
    )


@router_v1.post(
    "/credentials/list",
    operation_id="cscv1CredentialsList",
    responses=CSC_ERRORS,
    summary="CSC v1: the credentials the client may sign with.",
    response_model=ListResponse,
)
async def list_v1(body: ListRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    return _json({"credentialIDs": await _list(request, principal, body)})


class ListRequestV2(ListRequest):
    credentialInfo: bool = Field(False, description="Also return each credential's information.")
    certificates: Literal["none", "single", "chain"] = "single"
    certInfo: bool = False
    authInfo: bool = False
    onlyValid: bool = Field(False, description="Only valid credentials (this service lists only valid ones).")


@router_v2.post(
    "/credentials/list",
    operation_id="cscv2CredentialsList",
    responses=CSC_ERRORS,
    summary="CSC v2: the credentials the client may sign with, optionally with their information.",
    response_model=ListResponseV2,
)
async def list_v2(body: ListRequestV2, request: Request, principal: CSCCaller) -> JSONResponse:
    identifiers = await _list(request, principal, body)
    result: dict[str, Any] = {"credentialIDs": identifiers, "onlyValid": True}
    if body.credentialInfo:
        infos = []
        for identifier in identifiers:
            credential = await _credential(request, principal, identifier)
            infos.append(
                {"credentialID": identifier, **_info_v2(credential, body.certificates, body.certInfo, body.authInfo)}
            )
        result["credentialInfos"] = infos
    return _json(result)


class InfoRequest(_Body):
    credentialID: str = Field(max_length=64, description="The credential (certificate serial, hex).")
    certificates: Literal["none", "single", "chain"] = Field("single", description="Which certificates to return.")
    certInfo: bool = Field(False, description="Also the certificate's subject, issuer, serial and validity.")
    authInfo: bool = Field(False, description="Also how the credential is authorized.")


async def _credential(request: Request, principal: Principal, credential_id: str) -> RemoteCredential:
    return await asyncio.to_thread(
        get_services(request).remote_signing.credential, requester(request, principal), credential_id
    )


def _info_v1(credential: RemoteCredential, which: str, cert_info: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "description": f"{credential.profile} credential",
        "key": _key_info(credential),
        "cert": _cert_info(credential, which, cert_info),
        "authMode": "explicit",
        "SCAL": str(credential.scal),
        "multisign": MULTISIGN,
        "lang": "vi-VN",
    }
    if credential.scal == 2:
        info["PIN"] = {"presence": "true" if credential.pin else "false", "format": "N", "label": "PIN"}
        if credential.otp:
            info["OTP"] = {
                "presence": "true",
                "type": "offline",
                "format": "N",
                "label": "TOTP",
                "description": "The 6-digit code of the official's authenticator app (RFC 6238).",
                "ID": "totp",
                "provider": "govsign",
            }
    return info


def _info_v2(credential: RemoteCredential, which: str, cert_info: bool, auth_info: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "description": f"{credential.profile} credential",
        "key": _key_info(credential),
        "cert": _cert_info(credential, which, cert_info),
        "SCAL": str(credential.scal),
        "multisign": MULTISIGN,
        "lang": "vi-VN",
    }
    if auth_info:
        auth: dict[str, Any] = {"mode": "explicit"}
        objects = []
        if credential.scal == 2 and credential.pin:
            objects.append({"type": "Password", "id": "PIN", "format": "N", "label": "PIN"})
        if credential.scal == 2 and credential.otp:
            objects.append(
                {"type": "Password", "id": "OTP", "format": "N", "label": "TOTP", "generator": "totp",
                 "description": "The 6-digit code of the official's authenticator app (RFC 6238)."}
            )  # fmt: skip
        if objects:
            auth["expression"] = " AND ".join(item["id"] for item in objects)
            auth["objects"] = objects
        info["auth"] = auth
    return info


@router_v1.post(
    "/credentials/info",
    operation_id="cscv1CredentialsInfo",
    responses=CSC_ERRORS,
    summary="CSC v1: a credential's key, certificates and how it is authorized.",
    response_model=CredentialInfoV1,
)
async def info_v1(body: InfoRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    credential = await _credential(request, principal, body.credentialID)
    return _json(_info_v1(credential, body.certificates, body.certInfo))


@router_v2.post(
    "/credentials/info",
    operation_id="cscv2CredentialsInfo",
    responses=CSC_ERRORS,
    summary="CSC v2: a credential's key, certificates, SCAL and authorization objects.",
    response_model=CredentialInfoV2,
)
async def info_v2(body: InfoRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    credential = await _credential(request, principal, body.credentialID)
    return _json(_info_v2(credential, body.certificates, body.certInfo, body.authInfo))


# -- authorization -------------------------------------------------------------------------------


class AuthorizeResponse(BaseModel):
    SAD: str = Field(description="The signature activation data, single use (shown once).")
    expiresIn: int = Field(description="Seconds until the SAD expires (at most 300).")


class AuthorizeRequestV1(_Body):
    credentialID: str = Field(max_length=64)
    numSignatures: int = Field(ge=1, le=MULTISIGN, description="How many signatures to authorize.")
    hash: list[str] | None = Field(
        None,
        max_length=MULTISIGN,
        description="The hashes (base64) to bind the SAD to; required for an official's credential.",
    )
    hashAlgo: str | None = Field(None, max_length=64, description="OID of the hashes' algorithm (SHA-256 when absent).")
    PIN: str | None = Field(None, max_length=64)
    OTP: str | None = Field(None, max_length=16)


class AuthData(_Body):
    id: str = Field(max_length=20, description="PIN or OTP.")
    value: str = Field(max_length=64)


class AuthorizeRequestV2(_Body):
    credentialID: str = Field(max_length=64)
    numSignatures: int = Field(ge=1, le=MULTISIGN)
    hashes: list[str] | None = Field(None, max_length=MULTISIGN, description="The hashes (base64) to bind the SAD to.")
    hashAlgorithmOID: str | None = Field(None, max_length=64)
    authData: list[AuthData] = Field(default_factory=list, max_length=4)


async def _authorize(
    request: Request,
    principal: Principal,
    credential_id: str,
    count: int,
    hashes: list[str] | None,
    hash_oid: str | None,
    pin: str | None,
    otp: str | None,
) -> JSONResponse:
    values = [_unb64(value, "hash") for value in hashes or []]
    algorithm = _hash_algorithm(hash_oid, "hashAlgo") if hash_oid is not None else ("sha256" if values else None)
    if values and len(values) != count:
        raise InvalidInputError(f"Invalid parameter numSignatures: {count}, but {len(values)} hashes were given.")
    grant = await asyncio.to_thread(
        get_services(request).remote_signing.authorize,
        requester(request, principal),
        credential_id,
        AuthorizationRequest(count=count, hash_algorithm=algorithm, hashes=values, pin=pin, otp=otp),
    )
    return _json({"SAD": grant.sad, "expiresIn": grant.expires_in})


@router_v1.post(
    "/credentials/authorize",
    operation_id="cscv1Authorize",
    responses=CSC_ERRORS,
    summary="CSC v1: the SAD: an official's activation (PIN and/or OTP, bound to the hashes) or a seal's authorization.",
    response_model=AuthorizeResponse,
)
async def authorize_v1(body: AuthorizeRequestV1, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _authorize(
        request, principal, body.credentialID, body.numSignatures, body.hash, body.hashAlgo, body.PIN, body.OTP
    )


@router_v2.post(
    "/credentials/authorize",
    operation_id="cscv2Authorize",
    responses=CSC_ERRORS,
    summary="CSC v2: the SAD: an official's activation (authData PIN and/or OTP, bound to the hashes) or a seal's.",
    response_model=AuthorizeResponse,
)
async def authorize_v2(body: AuthorizeRequestV2, request: Request, principal: CSCCaller) -> JSONResponse:
    factors = {item.id.upper(): item.value for item in body.authData}
    unknown = set(factors) - {"PIN", "OTP"}
    if unknown:
        raise InvalidInputError(f"Invalid parameter authData: unknown id {sorted(unknown)[0]!r}; use PIN and OTP.")
    return await _authorize(
        request,
        principal,
        body.credentialID,
        body.numSignatures,
        body.hashes,
        body.hashAlgorithmOID,
        factors.get("PIN"),
        factors.get("OTP"),
    )


class ExtendRequest(_Body):
    credentialID: str = Field(max_length=64)
    SAD: str = Field(max_length=200, description="The SAD to replace (unused and unexpired).")
    hash: list[str] | None = Field(None, max_length=MULTISIGN, description="v1: ignored (the scope is the SAD's).")
    hashes: list[str] | None = Field(None, max_length=MULTISIGN, description="v2: ignored (the scope is the SAD's).")


async def _extend(body: ExtendRequest, request: Request, principal: Principal) -> JSONResponse:
    grant = await asyncio.to_thread(
        get_services(request).remote_signing.extend, requester(request, principal), body.credentialID, body.SAD
    )
    return _json({"SAD": grant.sad, "expiresIn": grant.expires_in})


@router_v1.post(
    "/credentials/extendTransaction",
    operation_id="cscv1ExtendTransaction",
    responses=CSC_ERRORS,
    summary="CSC v1: a fresh SAD in place of an unused one (seals and devices; an official authorizes again).",
    response_model=AuthorizeResponse,
)
async def extend_v1(body: ExtendRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _extend(body, request, principal)


@router_v2.post(
    "/credentials/extendTransaction",
    operation_id="cscv2ExtendTransaction",
    responses=CSC_ERRORS,
    summary="CSC v2: a fresh SAD in place of an unused one (seals and devices; an official authorizes again).",
    response_model=AuthorizeResponse,
)
async def extend_v2(body: ExtendRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _extend(body, request, principal)


@router_v1.post(
    "/credentials/sendOTP",
    operation_id="cscv1SendOTP",
    responses=CSC_ERRORS,
    summary="CSC v1: not offered: the officials' one-time codes come from their authenticator apps (TOTP).",
    response_model=CSCErrorBody,
)
async def send_otp_v1(request: Request, principal: CSCCaller) -> JSONResponse:
    raise InvalidInputError("This service sends no OTP: the official reads the code from an authenticator app (TOTP).")


# -- signing -------------------------------------------------------------------------------------


class SignHashRequestV1(_Body):
    credentialID: str = Field(max_length=64)
    SAD: str = Field(max_length=200)
    hash: list[str] = Field(min_length=1, max_length=MULTISIGN, description="The hashes to sign (base64).")
    hashAlgo: str | None = Field(
        None, max_length=64, description="OID of the hash algorithm (implied by some signAlgo)."
    )
    signAlgo: str = Field(
        max_length=64, description="OID: rsaEncryption, sha256WithRSAEncryption..., RSASSA-PSS, ecdsa..."
    )
    signAlgoParams: str | None = Field(None, max_length=400, description="Base64 DER RSASSA-PSS-params for RSASSA-PSS.")


class SignHashRequestV2(_Body):
    credentialID: str = Field(max_length=64)
    SAD: str = Field(max_length=200)
    hashes: list[str] = Field(min_length=1, max_length=MULTISIGN)
    hashAlgorithmOID: str | None = Field(None, max_length=64)
    signAlgo: str = Field(max_length=64)
    signAlgoParams: str | None = Field(None, max_length=400)
    operationMode: Literal["S"] = Field("S", description="Synchronous only.")


class SignHashResponse(BaseModel):
    signatures: list[str] = Field(description="The signature values (base64), in the order of the hashes.")


async def _sign_hash(
    request: Request,
    principal: Principal,
    credential_id: str,
    sad: str,
    hashes: list[str],
    hash_oid: str | None,
    sign_algo: str,
    sign_algo_params: str | None,
) -> JSONResponse:
    implied = SIGN_ALGORITHMS.get(sign_algo.strip(), ("", None))[1]
    algorithm = _hash_algorithm(hash_oid, "hashAlgo") if hash_oid is not None or implied is None else implied
    scheme = _signature_algorithm(sign_algo, sign_algo_params, algorithm)
    signatures = await asyncio.to_thread(
        get_services(request).remote_signing.sign_hashes,
        requester(request, principal),
        HashSigningRequest(
            credential_id=credential_id,
            sad=sad,
            hash_algorithm=algorithm,
            hashes=[_unb64(value, "hash") for value in hashes],
            signature_scheme=scheme,  # type: ignore[arg-type]
        ),
    )
    return _json({"signatures": [_b64(value) for value in signatures]})


@router_v1.post(
    "/signatures/signHash",
    operation_id="cscv1SignHash",
    responses=CSC_ERRORS,
    summary="CSC v1: raw signatures over the hashes the SAD authorized.",
    response_model=SignHashResponse,
)
async def sign_hash_v1(body: SignHashRequestV1, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _sign_hash(
        request, principal, body.credentialID, body.SAD, body.hash, body.hashAlgo, body.signAlgo, body.signAlgoParams
    )


@router_v2.post(
    "/signatures/signHash",
    operation_id="cscv2SignHash",
    responses=CSC_ERRORS,
    summary="CSC v2: raw signatures over the hashes the SAD authorized.",
    response_model=SignHashResponse,
)
async def sign_hash_v2(body: SignHashRequestV2, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _sign_hash(
        request,
        principal,
        body.credentialID,
        body.SAD,
        body.hashes,
        body.hashAlgorithmOID,
        body.signAlgo,
        body.signAlgoParams,
    )


class TimestampRequest(_Body):
    hash: str = Field(max_length=200, description="The hash to time-stamp (base64).")
    hashAlgo: str | None = Field(None, max_length=64, description="v1: OID of the hash algorithm.")
    hashAlgorithmOID: str | None = Field(None, max_length=64, description="v2: OID of the hash algorithm.")
    nonce: str | None = Field(None, max_length=64, description="A nonce (hex, at most 32 octets).")


class TimestampResponse(BaseModel):
    timestamp: str = Field(description="The RFC 3161 time-stamp token (base64 DER).")


async def _timestamp(body: TimestampRequest, request: Request, principal: Principal) -> JSONResponse:
    algorithm = _hash_algorithm(body.hashAlgorithmOID or body.hashAlgo, "hashAlgo")
    nonce = None
    if body.nonce is not None:
        try:
            raw = bytes.fromhex(body.nonce)
        except ValueError:
            raise InvalidInputError("Invalid parameter nonce: give it in hexadecimal.") from None
        if not 1 <= len(raw) <= 32:
            raise InvalidInputError("Invalid parameter nonce: 1 to 32 octets.")
        nonce = int.from_bytes(raw, "big")
    token = await asyncio.to_thread(
        get_services(request).remote_signing.timestamp,
        requester(request, principal),
        _unb64(body.hash, "hash"),
        algorithm,
        nonce,
    )
    return _json({"timestamp": _b64(token)})


@router_v1.post(
    "/signatures/timestamp",
    operation_id="cscv1Timestamp",
    responses=CSC_ERRORS,
    summary="CSC v1: an RFC 3161 time-stamp token over a hash from the service's TSA.",
    response_model=TimestampResponse,
)
async def timestamp_v1(body: TimestampRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _timestamp(body, request, principal)


@router_v2.post(
    "/signatures/timestamp",
    operation_id="cscv2Timestamp",
    responses=CSC_ERRORS,
    summary="CSC v2: an RFC 3161 time-stamp token over a hash from the service's TSA.",
    response_model=TimestampResponse,
)
async def timestamp_v2(body: TimestampRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    return await _timestamp(body, request, principal)


# -- signDoc -------------------------------------------------------------------------------------

_LEVELS = {
    "ades-b-b": "B-B", "ades-b": "B-B", "ades-b-t": "B-T", "ades-t": "B-T",
    "ades-b-lt": "B-LT", "ades-lt": "B-LT", "ades-b-lta": "B-LTA", "ades-lta": "B-LTA",
}  # fmt: skip


def _level(value: str) -> str:
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        raise InvalidInputError("Invalid parameter conformance_level: use Ades-B-B, Ades-B-T, Ades-B-LT or Ades-B-LTA.")
    return level


class DocumentIn(PDFAppearance):
    """A document to sign; a PDF also takes the visible-stamp and field parameters of
    ``/api/v1/signatures/pdf`` under the same names (stamp, title_text, name_text, stamp_page,
    stamp_box, document_number, copy_form, copy_agency, seal_diameter_mm, field_name, reason,
    location, verification_line)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    document: str = Field(description="The document (base64): a PDF for PAdES, any content for CAdES.")
    signature_format: Literal["P", "C"] = Field(description="P: PAdES (the signed PDF returned); C: CAdES detached.")
    conformance_level: str = Field(
        "Ades-B-B", max_length=20, description="Ades-B-B, Ades-B-T, Ades-B-LT or Ades-B-LTA."
    )
    signAlgo: str = Field(max_length=64, description="OID of the signature algorithm (see signHash).")
    signAlgoParams: str | None = Field(None, max_length=400)
    signed_envelope_property: str | None = Field(
        None, max_length=20, description="P: Certification or Revision (the default); C: Detached (the only one)."
    )


class DigestsIn(_Body):
    hashes: list[str] = Field(min_length=1, max_length=MULTISIGN, description="Document digests (base64).")
    hashAlgorithmOID: str = Field(max_length=64)
    signature_format: Literal["C"] = Field(description="C: a detached CAdES signature per digest.")
    conformance_level: str = Field("Ades-B-B", max_length=20)
    signAlgo: str = Field(max_length=64)
    signAlgoParams: str | None = Field(None, max_length=400)
    signed_envelope_property: str | None = Field(None, max_length=20, description="Detached (the only one).")


class SignDocRequest(_Body):
    credentialID: str = Field(max_length=64)
    SAD: str = Field(max_length=200)
    documents: list[DocumentIn] = Field(default_factory=list, max_length=MULTISIGN)
    documentDigests: list[DigestsIn] = Field(default_factory=list, max_length=MULTISIGN)
    operationMode: Literal["S"] = Field("S", description="Synchronous only.")


class SignDocResponse(BaseModel):
    DocumentWithSignature: list[str] = Field(
        description="The signed PDFs (base64), in the order of the PAdES documents."
    )
    SignatureObject: list[str] = Field(
        description="The detached CAdES signatures (base64): of the CAdES documents, then of each digest."
    )


@router_v2.post(
    "/signatures/signDoc",
    operation_id="cscv2SignDoc",
    responses=CSC_ERRORS,
    summary="CSC v2: PAdES and CAdES signatures of documents or document digests, B-B to B-LTA, under one SAD.",
    response_model=SignDocResponse,
)
async def sign_doc_v2(body: SignDocRequest, request: Request, principal: CSCCaller) -> JSONResponse:
    from govsign.services.remote_signing import DigestsToSign, DocumentSigningRequest, DocumentToSign

    documents = []
    for item in body.documents:
        envelope = (item.signed_envelope_property or "").lower()
        allowed = ("", "certification", "revision") if item.signature_format == "P" else ("", "detached")
        if envelope not in allowed:
            raise InvalidInputError("Invalid parameter signed_envelope_property for this signature_format.")
        implied = SIGN_ALGORITHMS.get(item.signAlgo.strip(), ("", None))[1] or "sha256"
        appearance = item.model_dump(include=set(PDFAppearance.model_fields))
        if item.signature_format == "C" and any(
            value not in (None, False) for name, value in appearance.items() if name != "verification_line"
        ):
            raise InvalidInputError("The stamp and field parameters apply to PDF (signature_format P) documents only.")
        box = appearance.pop("stamp_box")
        documents.append(
            DocumentToSign(
                content=_unb64(item.document, "document"),
                signature_format=item.signature_format,
                level=_level(item.conformance_level),  # type: ignore[arg-type]
                signature_scheme=_signature_algorithm(item.signAlgo, item.signAlgoParams, implied),  # type: ignore[arg-type]
                certify=envelope == "certification" or bool(appearance.pop("certify")),
                appearance={**appearance, "stamp_box": tuple(float(v) for v in box.split(",")) if box else None},
            )
        )
    digests = []
    for group in body.documentDigests:
        if (group.signed_envelope_property or "detached").lower() != "detached":
            raise InvalidInputError("Invalid parameter signed_envelope_property: digests are signed Detached.")
        algorithm = _hash_algorithm(group.hashAlgorithmOID, "hashAlgorithmOID")
        digests.append(
            DigestsToSign(
                hashes=[_unb64(value, "hashes") for value in group.hashes],
                hash_algorithm=algorithm,
                level=_level(group.conformance_level),  # type: ignore[arg-type]
                signature_scheme=_signature_algorithm(group.signAlgo, group.signAlgoParams, algorithm),  # type: ignore[arg-type]
            )
        )
    if not documents and not digests:
        raise InvalidInputError("Missing parameter documents or documentDigests.")
    signed = await asyncio.to_thread(
        get_services(request).remote_signing.sign_documents,
        requester(request, principal),
        DocumentSigningRequest(credential_id=body.credentialID, sad=body.SAD, documents=documents, digests=digests),
    )
    return _json(
        {
            "DocumentWithSignature": [_b64(value) for value in signed.documents_with_signature],
            "SignatureObject": [_b64(value) for value in signed.signature_objects],
        }
    )
