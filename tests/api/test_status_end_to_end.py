"""End to end: `govsign init`, `cert issue`, `serve` and `cert revoke` as separate processes on a
fresh data dir, checked through the URLs written in the certificates with openssl, GnuTLS
ocsptool and pyhanko-certvalidator."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from helpers.ca import make_csr
from helpers.pdf import require_tool
from helpers.protocols import VENV_BIN, clean_env, run

pytestmark = pytest.mark.slow

GOVSIGN = VENV_BIN / "govsign"
FAST_KEYS = ("--root-key", "ec-p256", "--issuing-key", "ec-p256", "--service-key", "ec-p256")


@dataclass
class Service:
    workdir: Path
    env: dict[str, str]
    base_url: str
    good: Path
    revoked: Path
    revoked_serial: str
    issuing: Path
    root: Path
    chain: Path

    def govsign(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([GOVSIGN, *args], env=self.env, cwd=self.workdir, timeout=120)

    def revoke(self) -> None:
        """Revoke the second certificate (once; a second call finds it revoked already, exit 4)."""
        result = self.govsign("cert", "revoke", self.revoked_serial, "--reason", "key-compromise")
        assert result.returncode in (0, 4), result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uri(certificate: Path, kind: str) -> str:
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    if kind == "ocsp":
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        return next(str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return str(cdp[0].full_name[0].value)  # type: ignore[index]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    for tool in ("openssl", "ocsptool"):
        require_tool(tool)
    workdir = Path(tempfile.mkdtemp(prefix="govsign-status-e2e-"))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_env(
        GOVSIGN_DATA_DIR=str(workdir / "data"), GOVSIGN_PUBLIC_BASE_URL=base_url, GOVSIGN_HSM_PIN="e2e-status-pin-1"
    )
    server: subprocess.Popen[bytes] | None = None
    log = (workdir / "serve.log").open("wb")
    try:
        init = run([GOVSIGN, "init", "--json", *FAST_KEYS], env=env, cwd=workdir, timeout=120)
        assert init.returncode == 0, init.stderr
        made = json.loads(init.stdout)
        paths = {name: workdir / f"{name}.pem" for name in ("root", "issuing", "chain", "good", "revoked")}
        paths["root"].write_text(made["root_ca"]["certificate_pem"])
        paths["issuing"].write_text(made["issuing_ca"]["certificate_pem"])
        paths["chain"].write_text(made["issuing_ca"]["certificate_pem"] + made["root_ca"]["certificate_pem"])
        serials = {}
        for name in ("good", "revoked"):
            (workdir / f"{name}.csr").write_bytes(make_csr(f"Kiểm Thử {name}"))
            issued = run(
                [GOVSIGN, "cert", "issue", "--profile", "individual", "--csr", workdir / f"{name}.csr", "--json"],
                env=env,
                cwd=workdir,
            )
            assert issued.returncode == 0, issued.stderr
            details = json.loads(issued.stdout)
            paths[name].write_text(details["certificate_pem"])
            serials[name] = details["serial"]

        server = subprocess.Popen(
            [str(GOVSIGN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (workdir / "serve.log").read_text(errors="replace")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "govsign serve did not become ready in 60 s"
            time.sleep(0.2)
        yield Service(
            workdir=workdir,
            env=env,
            base_url=base_url,
            good=paths["good"],
            revoked=paths["revoked"],
            revoked_serial=serials["revoked"],
            issuing=paths["issuing"],
            root=paths["root"],
            chain=paths["chain"],
        )
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _openssl_ocsp(service: Service, certificate: Path, *options: str) -> subprocess.CompletedProcess[str]:
    url = _uri(certificate, "ocsp")
    assert url == f"{service.base_url}/pki/ocsp"
    return run(
        [
            "openssl",
            "ocsp",
            "-url",
            url,
            "-issuer",
            service.issuing,
            *options,
            "-cert",
            certificate,
            "-CAfile",
            service.chain,
        ]
    )


def _served_crl(service: Service) -> x509.CertificateRevocationList | None:
    reply = httpx.get(_uri(service.good, "crl"), timeout=5)
    return x509.load_der_x509_crl(reply.content) if reply.status_code == 200 else None


def test_openssl_and_ocsptool_see_good_then_revoked_and_the_crl_follows(service: Service) -> None:
    for certificate in (service.good, service.revoked):
        out = _openssl_ocsp(service, certificate)
        assert ": good" in out.stdout, out.stdout + out.stderr
        assert "Response verify OK" in out.stderr, out.stderr
        assert "WARNING" not in out.stdout + out.stderr, "the nonce is echoed and the response is fresh"

    for options in (("-no_nonce",), ("-no_nonce", "-sha256"), ("-sha256",)):  # pre-produced and live answers
        out = _openssl_ocsp(service, service.good, *options)
        assert ": good" in out.stdout and "Response verify OK" in out.stderr, (options, out.stdout + out.stderr)

    service.revoke()
    out = _openssl_ocsp(service, service.revoked)  # right after the command returned
    assert ": revoked" in out.stdout and "keyCompromise" in out.stdout, out.stdout + out.stderr
    assert "Response verify OK" in out.stderr and "WARNING" not in out.stdout + out.stderr
    out = _openssl_ocsp(service, service.revoked, "-no_nonce")  # the stored answer was replaced
    assert ": revoked" in out.stdout and "keyCompromise" in out.stdout, out.stdout + out.stderr
    assert ": good" in _openssl_ocsp(service, service.good).stdout

    for certificate, status in ((service.good, "good"), (service.revoked, "revoked")):
        out = run(
            [
                "ocsptool",
                f"--ask={_uri(certificate, 'ocsp')}",
                f"--load-cert={certificate}",
                f"--load-issuer={service.issuing}",
                f"--load-trust={service.chain}",
                "--nonce",
            ]
        )
        assert f"Certificate Status: {status}" in out.stdout, out.stdout + out.stderr
        assert "Verifying OCSP Response: Success" in out.stdout, out.stdout + out.stderr

    # The running service publishes a CRL with the revocation within seconds (contract: 5 s).
    serial = x509.load_pem_x509_certificate(service.revoked.read_bytes()).serial_number
    deadline = time.monotonic() + 5.0
    crl = _served_crl(service)
    while (crl is None or crl.get_revoked_certificate_by_serial_number(serial) is None) and time.monotonic() < deadline:
        time.sleep(0.2)
        crl = _served_crl(service)
    assert crl is not None and crl.get_revoked_certificate_by_serial_number(serial) is not None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    # `govsign crl publish` signs fresh ones at once, with higher numbers, served right away.
    published = service.govsign("crl", "publish", "--json")
    assert published.returncode == 0, published.stderr
    by_ca = {entry["ca_id"]: entry for entry in json.loads(published.stdout)}
    assert by_ca["issuing-1"]["crl_number"] > number
    assert by_ca["issuing-1"]["delta_crl_number"] == by_ca["issuing-1"]["crl_number"] + 1
    served = _served_crl(service)
    assert served is not None
    assert (
        served.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= by_ca["issuing-1"]["crl_number"]
    )
    assert served.get_revoked_certificate_by_serial_number(serial) is not None

    (service.workdir / "crl.pem").write_bytes(served.public_bytes(Encoding.PEM))
    verify: list[str | Path] = [
        "openssl",
        "verify",
        "-crl_check",
        "-CRLfile",
        service.workdir / "crl.pem",
        "-CAfile",
        service.root,
    ]
    out = run([*verify, "-untrusted", service.issuing, service.revoked])
    assert "certificate revoked" in out.stdout + out.stderr


def _validate_with_pyhanko(service: Service, path: Path, extra_crls: list[bytes]) -> object:
    import pyhanko_certvalidator as certvalidator
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    def load(pem_path: Path) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(asn1_pem.unarmor(pem_path.read_bytes())[2])

    from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

    async def validate() -> object:
        async with AIOHttpFetcherBackend() as fetchers:
            context = certvalidator.ValidationContext(
                trust_roots=[load(service.root)],
                other_certs=[load(service.issuing)],
                allow_fetching=True,
                revocation_mode="require",
                crls=extra_crls,
                fetchers=fetchers,
            )
            validator = certvalidator.CertificateValidator(load(path), validation_context=context)
            return await validator.async_validate_usage({"digital_signature", "non_repudiation"})

    return asyncio.run(validate())


def test_pyhanko_certvalidator_require_mode_with_the_delta_crls_named_by_our_crls(service: Service) -> None:
    """pyhanko-certvalidator fetches OCSP and complete CRLs from the certificates' URLs; the delta
    CRLs that our complete CRLs name in Freshest CRL are handed to it (see the xfail below)."""
    from pyhanko_certvalidator import errors

    service.revoke()
    deltas = [
        httpx.get(f"{service.base_url}/pki/crl/{ca}-delta.crl", timeout=5).content for ca in ("root-1", "issuing-1")
    ]
    path = _validate_with_pyhanko(service, service.good, deltas)
    assert len(path) == 3  # type: ignore[arg-type]
    with pytest.raises(errors.RevokedError):
        _validate_with_pyhanko(service, service.revoked, deltas)


def test_pyhanko_certvalidator_require_mode_fetching_everything_itself(service: Service) -> None:
    from pyhanko_certvalidator import errors

    service.revoke()
    try:
        path = _validate_with_pyhanko(service, service.good, [])
    except errors.InsufficientRevinfoError as exc:
        assert "Freshest CRL" not in str(exc), str(exc)
        raise
    assert len(path) == 3  # type: ignore[arg-type]
    with pytest.raises(errors.RevokedError):
        _validate_with_pyhanko(service, service.revoked, [])
