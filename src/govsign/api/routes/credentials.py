"""Signing credentials (`/api/v1/credentials[/{serial}/...]`): the credentials a signer may use,
officials' second factors, their signature activations (sole control), and the image that
visible signatures show."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import decode_base64
from govsign.api.routes.parameters import SERIAL, problems
from govsign.api.schemas import resources as schemas
from govsign.der import certificate_pem
from govsign.services.remote_signing import RemoteCredential
from govsign.services.sole_control import ActivationRequest

router = APIRouter(prefix="/api/v1", tags=["sole control"])


def _credential(credential: RemoteCredential) -> dict[str, Any]:
    schemes = ["rsa-pkcs1v15", "rsa-pss"] if credential.key_algorithm.is_rsa else ["ecdsa"]
    return schemas.SigningCredential(
        serial=credential.credential_id,
        profile=credential.profile,  # type: ignore[arg-type]
        subject=credential.subject,
        agency_id=credential.agency_id,
        status=credential.status.value,
        key_algorithm=credential.key_algorithm.value,
        signature_algorithms=schemes,
        activation_required=credential.scal == 2,
        factors=[name for name, on in (("pin", credential.pin), ("totp", credential.otp)) if on],  # type: ignore[misc]
        stamp_image=credential.stamp_image,
        not_before=credential.not_before,
        not_after=credential.not_after,
        certificate_pem=certificate_pem(x509.load_der_x509_certificate(credential.certificate_der)),
        chain_pem=[certificate_pem(x509.load_der_x509_certificate(der)) for der in credential.chain_der],
    ).model_dump(mode="json")


@router.get(
    "/credentials",
    operation_id="listSigningCredentials",
    summary="The credentials the caller may sign with (its agency and sub-units): profile, key, activation, chain.",
    response_model=schemas.SigningCredentialList,
    responses=problems(403),
)
async def list_credentials(request: Request, principal: Caller) -> JSONResponse:
    remote = get_services(request).remote_signing
    who = requester(request, principal)

    def read() -> list[dict[str, Any]]:
        return [_credential(remote.credential(who, serial)) for serial in remote.credential_ids(who, limit=1000)]

    return JSONResponse({"items": await asyncio.to_thread(read)})


@router.get(
    "/credentials/{serial}",
    operation_id="getSigningCredential",
    summary="One credential the caller may sign with.",
    response_model=schemas.SigningCredential,
    responses=problems(403, 404),
)
async def get_credential(serial: SERIAL, request: Request, principal: Caller) -> JSONResponse:
    remote = get_services(request).remote_signing
    credential = await asyncio.to_thread(remote.credential, requester(request, principal), serial)
    return JSONResponse(_credential(credential))


def _shown_once(resource: BaseModel) -> JSONResponse:
    """A secret created now (201), which caches must not keep."""
    return JSONResponse(resource.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


@router.post(
    "/credentials/{serial}/factors/totp",
    operation_id="enrolTOTP",
    summary="Enrol a new TOTP seed for an official's credential (replaces the old one); shown once.",
    status_code=201,
    response_model=schemas.TOTPEnrolment,
    responses=problems(404, 409, 422),
)
async def enrol_totp(serial: SERIAL, request: Request, principal: Caller) -> JSONResponse:
    credential, enrolment = await asyncio.to_thread(
        get_services(request).sole_control.enrol_totp, serial, requester(request, principal)
    )
    return _shown_once(
        schemas.TOTPEnrolment(credential=credential, secret=enrolment.secret_base32, otpauth_uri=enrolment.uri)
    )


@router.put(
    "/credentials/{serial}/factors/pin",
    operation_id="setPIN",
    summary="Set an official's PIN, or change it (then the current PIN is required).",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
)
async def set_pin(serial: SERIAL, body: schemas.PINRequest, request: Request, principal: Caller) -> Response:
    await asyncio.to_thread(
        get_services(request).sole_control.set_pin,
        serial,
        body.pin,
        requester(request, principal),
        current_pin=body.current_pin,
    )
    return Response(status_code=204)


@router.get(
    "/credentials/{serial}/factors",
    operation_id="getFactors",
    summary="Which factors an official's credential has (never the factors).",
    response_model=schemas.FactorStatus,
    responses=problems(404),
)
async def get_factors(serial: SERIAL, request: Request, principal: Caller) -> JSONResponse:
    status = await asyncio.to_thread(
        get_services(request).sole_control.factor_status, serial, requester(request, principal)
    )
    return JSONResponse(
        schemas.FactorStatus(
            credential=status.credential, totp=status.totp, pin=status.pin, locked_until=status.locked_until
        ).model_dump(mode="json")
    )


@router.post(
    "/credentials/{serial}/activations",
    operation_id="activateSignature",
    summary="The official activates signing of exactly these hashes (one-time code and/or PIN); single use, <= 5 min.",
    status_code=201,
    response_model=schemas.Activation,
    responses=problems(404, 409, 422),
)
async def activate(
    serial: SERIAL, body: schemas.ActivationRequest, request: Request, principal: Caller
) -> JSONResponse:
    hashes = [decode_base64(value, "hash") for value in body.hashes]
    grant = await asyncio.to_thread(
        get_services(request).sole_control.activate,
        serial,
        requester(request, principal),
        ActivationRequest(
            hash_algorithm=body.hash_algorithm, hashes=hashes, count=body.count, otp=body.otp, pin=body.pin
        ),
    )
    return _shown_once(
        schemas.Activation(
            activation=grant.token,
            credential=grant.credential,
            hash_algorithm=grant.hash_algorithm,
            count=grant.count,
            expires_at=grant.expires_at,
        )
    )


@router.put(
    "/credentials/{serial}/stamp-image",
    operation_id="setStampImage",
    summary="Store the seal (agency) or signature (official) image shown by the credential's visible signatures.",
    response_model=schemas.StampImage,
    responses=problems(404, 413, 422),
)
async def set_stamp_image(
    serial: SERIAL, body: schemas.StampImageRequest, request: Request, principal: Caller
) -> JSONResponse:
    image = decode_base64(body.image_png, "image_png")
    digest = await asyncio.to_thread(
        get_services(request).stamp_images.set, serial, image, requester(request, principal), width_mm=body.width_mm
    )
    stored = schemas.StampImage(credential=serial.replace(":", "").lower(), image_sha256=digest, width_mm=body.width_mm)
    return JSONResponse(stored.model_dump(mode="json"))
