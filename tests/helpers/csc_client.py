"""Sign a PDF through a CSC v1 service with pyHanko's own client (``CSCSigner``), as a signing app
that knows nothing of govsign would. Used by the suite against ``govsign serve`` and runnable
by hand against any CSC v1 server, such as certomancer-csc-dummy::

    python tests/helpers/csc_client.py URL TOKEN CREDENTIAL_ID IN.pdf OUT.pdf [--pin PIN] [--otp CODE]

With ``--pin``/``--otp`` the SAD is asked for the hash being signed, with the factors (an
official's credential, SCAL 2); without them a SAD for one signature is fetched first (a seal,
SCAL 1). ``TOKEN`` is the CSC access token (from ``auth/login``); ``-`` for none.
"""

from __future__ import annotations

import argparse
import asyncio
from io import BytesIO

import aiohttp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCServiceSessionInfo,
    CSCSigner,
    PrefetchedSADAuthorizationManager,
    fetch_certs_in_csc_credential,
)


class FactorAuthorization(CSCAuthorizationManager):
    """Asks ``credentials/authorize`` for exactly the hashes about to be signed, with the factors."""

    def __init__(self, session_info, credential_info, session, pin, otp):  # type: ignore[no-untyped-def]
        super().__init__(session_info, credential_info)
        self._session = session
        self._pin, self._otp = pin, otp

    async def authorize_signature(self, hash_b64s: list[str]) -> CSCAuthorizationInfo:
        body = self.format_csc_auth_request(pin=self._pin, otp=self._otp, hash_b64s=hash_b64s)
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self._session.post(url, headers=self.auth_headers, json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"credentials/authorize answered {response.status}: {data}")
        return self.parse_csc_auth_response(data)


async def sign(
    url: str, token: str | None, credential_id: str, pdf: bytes, *, pin: str | None = None, otp: str | None = None
) -> bytes:
    async with aiohttp.ClientSession() as session:
        info = CSCServiceSessionInfo(url, credential_id, oauth_token=token)
        credential = await fetch_certs_in_csc_credential(session, info)
        manager: CSCAuthorizationManager
        if pin is not None or otp is not None:
            manager = FactorAuthorization(info, credential, session, pin, otp)
        else:
            fetch = FactorAuthorization(info, credential, session, None, None)
            body = fetch.format_csc_auth_request(num_signatures=1)
            async with session.post(
                info.endpoint_url("credentials/authorize"), headers=info.auth_headers, json=body
            ) as r:
                data = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"credentials/authorize answered {r.status}: {data}")
            manager = PrefetchedSADAuthorizationManager(info, credential, fetch.parse_csc_auth_response(data))
        signer = CSCSigner(session, manager)
        meta = signers.PdfSignatureMetadata(field_name="ChuKySo", md_algorithm="sha256", reason="Ký số từ xa")
        output = await signers.PdfSigner(meta, signer).async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)))
        return bytes(output.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("credential_id")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--pin")
    parser.add_argument("--otp")
    args = parser.parse_args()
    with open(args.input, "rb") as handle:
        pdf = handle.read()
    token = None if args.token == "-" else args.token
    signed = asyncio.run(sign(args.url, token, args.credential_id, pdf, pin=args.pin, otp=args.otp))
    with open(args.output, "wb") as handle:
        handle.write(signed)


if __name__ == "__main__":
    main()
