"""Validation of an RFC 3161 time-stamp token over the document it stamps (ETSI EN 319 102-1
5.4): the token's signature and the TSA's certificate path, and that its message imprint is the
document's hash. The token may come as a TimeStampResp (``application/timestamp-reply``) or as
the token itself (a ContentInfo with SignedData)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable

from asn1crypto import cms, tsp
from pyhanko.sign.validation.ades import ades_timestamp_validation
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

from govsign.errors import InvalidInputError
from govsign.validation.engine import ENTIRE, Signed, judge, reason, timed_out, unreadable
from govsign.validation.evidence import Freshness, covers, own_status, path_building_stopped, validation_spec
from govsign.validation.policy import Deadline, StatusSource, TimeBoundReachedError, ValidationPolicy
from govsign.validation.report import SignatureReport


def parse_timestamp(data: bytes) -> cms.SignedData:
    """The token's SignedData, from a TimeStampResp or a token; InvalidInputError otherwise."""
    try:
        response = tsp.TimeStampResp.load(data, strict=True)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise InvalidInputError(f"The time-stamp reply is a rejection ({status}), not a token.")
        token = response["time_stamp_token"]
    except (ValueError, TypeError, KeyError):
        try:
            token = cms.ContentInfo.load(data, strict=True)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"Neither a time-stamp reply nor a token ({reason(exc)}).") from None
    try:
        if token["content_type"].native != "signed_data":
            raise InvalidInputError("The time-stamp token is not SignedData.")
        signed_data: cms.SignedData = token["content"]
        if signed_data["encap_content_info"]["content_type"].native != "tst_info":
            raise InvalidInputError("The SignedData does not carry a TSTInfo: it is not a time-stamp token.")
        signed_data["encap_content_info"]["content"].parsed.native  # noqa: B018 - decodes the TSTInfo
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(f"The time-stamp token cannot be read ({reason(exc)}).") from None
    return signed_data


def imprint_algorithm(signed_data: cms.SignedData) -> str:
    """The hash algorithm of the token's message imprint."""
    tst = signed_data["encap_content_info"]["content"].parsed
    return str(tst["message_imprint"]["hash_algorithm"]["algorithm"].native)


def imprint_of(chunks: Iterable[bytes], algorithm: str) -> bytes:
    hasher = hashlib.new(algorithm)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()


def validate_timestamp(
    signed_data: cms.SignedData,
    document_imprint: bytes,
    policy: ValidationPolicy,
    *,
    now: dt.datetime,
    status: StatusSource | None = None,
) -> SignatureReport:
    """Validate the token over a document whose hash (with the imprint's algorithm) is given."""
    return asyncio.run(_validate(signed_data, lambda _algorithm: document_imprint, policy, now, status))


async def _validate(
    signed_data: cms.SignedData,
    imprint: Callable[[str], bytes],
    policy: ValidationPolicy,
    now: dt.datetime,
    status: StatusSource | None,
) -> SignatureReport:
    deadline = Deadline(policy.timeout_seconds)
    certificates = [c.chosen for c in signed_data["certificates"] or [] if c.name == "certificate"]
    known = own_status(status, certificates, policy)
    at = Freshness(
        validation_time=now, best_signature_time=now, tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds)
    )
    spec = validation_spec(policy, known, certificates, fetch=not covers(known, certificates, at), deadline=deadline)
    timing = ValidationTimingInfo(validation_time=now, best_signature_time=now, point_in_time_validation=False)
    tst = signed_data["encap_content_info"]["content"].parsed
    sid = signed_data["signer_infos"][0]["sid"]
    signer = next(
        (
            c
            for c in certificates
            if sid.name == "issuer_and_serial_number"
            and c.serial_number == sid.chosen["serial_number"].native
            and c.issuer == sid.chosen["issuer"]
        ),
        None,
    )
    if signer is None:
        raise InvalidInputError("The TSA's certificate is not in the time-stamp token.")
    signed = Signed(
        signer_certificate=signer,
        digest_algorithm=str(signed_data["signer_infos"][0]["digest_algorithm"]["algorithm"].native),
        level="RFC3161",
        claimed_signing_time=tst["gen_time"].native,
    )
    try:
        result = await asyncio.wait_for(
            ades_timestamp_validation(signed_data, spec, expected_tst_imprint=imprint, timing_info=timing),
            deadline.remaining(),
        )
    except (TimeoutError, TimeBoundReachedError):
        return timed_out(signed, now, policy)
    except RecursionError:
        raise InvalidInputError("The time-stamp token nests its structures too deeply to be read.") from None
    except ValueError as exc:
        return unreadable(signed, now, exc)
    return judge(result, signed, ENTIRE, known, policy, now, path_building_stopped=path_building_stopped(spec))
