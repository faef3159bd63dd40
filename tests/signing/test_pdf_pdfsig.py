"""poppler's pdfsig (on NSS) accepts our PAdES B-B and B-T signatures (and B-T with RSASSA-PSS),
an official's signature followed by the agency's seal, the Decree 30 chain person (B-T) ->
seal (B-LT) -> copy (B-LT) made through the REST API, and PDFs signed by pyHanko's own CSC
client (CSCSigner) through /csc/v1 with a seal and with an official's PIN and TOTP code, while `govsign serve` answers the OCSP
URL in the signer's certificate (pdfsig checks it). Everything runs in child processes: the
CLI, the service and the signing script use their own SoftHSM2 token store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from helpers.pdf import require_tool
from signing.decree30_pages import NAME, decision_pdf, seal_png, signature_png

VENV_BIN = Path(sys.executable).parent
GOVSIGN = VENV_BIN / "govsign"

SIGN_SCRIPT = """
import io, json, sys
from govsign.config import load_settings
from govsign.keystore.api import SignatureScheme
from govsign.services.bootstrap import Services
from govsign.signing.cms import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter

services = Services.open(load_settings())
serial, out_dir = sys.argv[1], sys.argv[2]
with services.database.read_only() as ports:
    record = ports.certificates.find_by_serial(serial)[0]
    issuing, root = ports.cas.get_ca("issuing-1"), ports.cas.get_ca("root-1")
credential = SigningCredential(
    key=record.key, certificate_der=record.certificate_der, chain_der=(issuing.certificate_der, root.certificate_der)
)
writer = PdfFileWriter()
box = [generic.NumberObject(v) for v in (0, 0, 595, 842)]
writer.insert_page(generic.DictionaryObject({
    generic.NameObject("/Type"): generic.NameObject("/Page"),
    generic.NameObject("/MediaBox"): generic.ArrayObject(box),
}))
buffer = io.BytesIO()
writer.write(buffer)
for level, scheme in (("B-B", None), ("B-T", None), ("B-T", SignatureScheme.RSA_PSS)):
    stamper = LocalTimeStamper(services.timestamps.answer) if level == "B-T" else None
    spec = PDFSignatureSpec(reason="Phê duyệt văn bản", location="Hà Nội", level=level, signature_scheme=scheme)
    signed = sign_pdf(buffer.getvalue(), credential, services.keystore, spec, timestamper=stamper)
    open(f"{out_dir}/signed-{level}{'-pss' if scheme else ''}.pdf", "wb").write(signed)
services.close()
"""

SEAL_SCRIPT = """
import io, sys
from govsign.config import load_settings
from govsign.services.bootstrap import Services
from govsign.signing.cms import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter

services = Services.open(load_settings())
official_serial, seal_serial, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]


def credential(serial):
    with services.database.read_only() as ports:
        record = ports.certificates.find_by_serial(serial)[0]
        issuing, root = ports.cas.get_ca("issuing-1"), ports.cas.get_ca("root-1")
    chain = (issuing.certificate_der, root.certificate_der)
    return SigningCredential(key=record.key, certificate_der=record.certificate_der, chain_der=chain)


writer = PdfFileWriter()
box = [generic.NumberObject(v) for v in (0, 0, 595, 842)]
writer.insert_page(generic.DictionaryObject({
    generic.NameObject("/Type"): generic.NameObject("/Page"),
    generic.NameObject("/MediaBox"): generic.ArrayObject(box),
}))
with open(f"{out_dir}/unsigned.pdf", "wb") as handle:
    writer.write(handle)
stamper = LocalTimeStamper(services.timestamps.answer)
official = PDFSignatureSpec(field_name="Official", reason="Ký duyệt", location="Hà Nội", level="B-T")
with open(f"{out_dir}/unsigned.pdf", "rb") as pdf, open(f"{out_dir}/official.pdf", "w+b") as out:
    sign_pdf(pdf, credential(official_serial), services.keystore, official, stamper, output=out)
seal = PDFSignatureSpec(field_name="Seal", reason="Đóng dấu cơ quan", location="Hà Nội", level="B-T")
with open(f"{out_dir}/official.pdf", "rb") as pdf, open(f"{out_dir}/sealed.pdf", "w+b") as out:
    sign_pdf(pdf, credential(seal_serial), services.keystore, seal, stamper, output=out)
services.close()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    require_tool("pdfsig")
    require_tool("certutil")
    work = tmp_path_factory.mktemp("pdfsig")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(work / "data"),
        GOVSIGN_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        GOVSIGN_HSM_PIN="pdfsig-1234",
        GOVSIGN_LINT_WITH_PKILINT="false",
    )
    init = subprocess.run(
        [
            str(GOVSIGN),
            "init",
            "--json",
            "--root-key",
            "ec-p256",
            "--issuing-key",
            "rsa2048",
            "--service-key",
            "ec-p256",
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    chain = json.loads(init.stdout)
    (work / "root.pem").write_text(chain["root_ca"]["certificate_pem"])
    (work / "ica.pem").write_text(chain["issuing_ca"]["certificate_pem"])
    server = subprocess.Popen(
        [str(GOVSIGN), "serve", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "govsign serve did not become ready"
            time.sleep(0.3)
        env["TEST_BASE_URL"] = f"http://127.0.0.1:{port}"
        yield work, env
    finally:
        server.terminate()
        server.wait(timeout=30)


def _nss_db(work: Path) -> Path:
    nss = work / "nss"
    if not nss.exists():
        nss.mkdir()
        subprocess.run(["certutil", "-N", "-d", str(nss), "--empty-password"], check=True, capture_output=True)
        subprocess.run(
            ["certutil", "-A", "-d", str(nss), "-n", "root", "-t", "CT,C,C", "-i", str(work / "root.pem")], check=True
        )
        subprocess.run(
            ["certutil", "-A", "-d", str(nss), "-n", "issuing", "-t", ",,", "-i", str(work / "ica.pem")], check=True
        )
    return nss


def _issue(work: Path, env: dict[str, str], profile: str, subject: str, email: str) -> str:
    """Issue a certificate with an RSA key generated in the HSM through the CLI; its serial."""
    issued = subprocess.run(
        [
            str(GOVSIGN),
            "cert",
            "issue",
            "--profile",
            profile,
            "--subject",
            subject,
            "--email",
            email,
            "--generate-key",
            "rsa2048",
            "--json",
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(issued.stdout)["serial"])


def _pdfsig(work: Path, pdf: Path) -> str:
    check = subprocess.run(["qpdf", "--check", str(pdf)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # pdfsig exits 0 whatever it finds: read what it says.
    report = subprocess.run(
        ["pdfsig", "-nssdir", str(_nss_db(work)), str(pdf)], capture_output=True, text=True, check=False
    )
    return report.stdout + report.stderr


@pytest.mark.slow
def test_pdfsig_says_valid_and_trusted_for_b_b_and_b_t_with_pkcs1_and_pss(served: tuple[Path, dict[str, str]]) -> None:
    work, env = served
    serial = _issue(work, env, "individual", "CN=Nguyễn Văn Ký,O=Bộ Tư pháp,C=VN", "ky@moj.gov.vn")
    subprocess.run([sys.executable, "-c", SIGN_SCRIPT, serial, str(work)], env=env, cwd=work, check=True, timeout=120)
    for name in ("B-B", "B-T", "B-T-pss"):
        pdf = work / f"signed-{name}.pdf"
        (signature,) = PdfFileReader(BytesIO(pdf.read_bytes())).embedded_signatures
        expected = "rsassa_pss" if name.endswith("pss") else "sha256_rsa"
        assert signature.signer_info["signature_algorithm"]["algorithm"].native == expected
        text = _pdfsig(work, pdf)
        assert "Signature is Valid." in text, name + "\n" + text
        assert "Certificate is Trusted." in text, name + "\n" + text


@pytest.mark.slow
def test_pdfsig_says_valid_and_trusted_for_the_official_then_the_agency_seal(
    served: tuple[Path, dict[str, str]],
) -> None:
    """An official signs (individual profile, B-T), then the agency seals (organization
    profile, B-T): both signatures are valid and trusted, the first one covering its revision."""
    work, env = served
    official = _issue(work, env, "individual", "CN=Trần Thị Duyệt,O=Bộ Tư pháp,C=VN", "duyet@moj.gov.vn")
    seal = _issue(work, env, "organization", "CN=Bộ Tư pháp,O=Bộ Tư pháp,C=VN", "vanthu@moj.gov.vn")
    subprocess.run(
        [sys.executable, "-c", SEAL_SCRIPT, official, seal, str(work)], env=env, cwd=work, check=True, timeout=120
    )
    text = _pdfsig(work, work / "sealed.pdf")
    assert text.count("Signature #") == 2, text
    assert text.count("Signature is Valid.") == 2, text
    assert text.count("Certificate is Trusted.") == 2, text
    assert "Trần Thị Duyệt" in text and "Bộ Tư pháp" in text, text


def _cli_json(work: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run(
        [str(GOVSIGN), *args, "--json"], env=env, cwd=work, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def _call(
    env: dict[str, str], method: str, path: str, token: str, body: object, *, params: str = "", **headers: str
) -> bytes:
    """One REST call to the served instance; its body (the test fails on anything but 2xx)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    kind = "application/pdf" if isinstance(body, bytes) else "application/json"
    request = urllib.request.Request(
        f"{env['TEST_BASE_URL']}{path}{'?' + params if params else ''}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": kind, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None


@pytest.mark.slow
def test_pdfsig_says_valid_and_trusted_after_person_seal_copy_through_the_api(
    served: tuple[Path, dict[str, str]],
) -> None:
    """Decree 30: the official signs with his image between title and name (B-T, PIN
    activation), the agency seals over it (B-LT, with a DSS), the office makes a SAO Y copy
    (B-LT): after each step pdfsig finds every signature valid and its certificate trusted."""
    work, env = served
    _cli_json(work, env, "agency", "add", "ubnd-hn", "--name", "Ủy ban nhân dân tỉnh Hà Nam")
    ra = str(_cli_json(work, env, "client", "add", "ra-hn", "--role", "ra-officer", "--agency", "ubnd-hn")["token"])
    docs = str(_cli_json(work, env, "client", "add", "docs-hn", "--role", "signer", "--agency", "ubnd-hn")["token"])
    agency = "O=Ủy ban nhân dân tỉnh Hà Nam,C=VN"
    serials = {}
    for role, body in (
        ("person", {"profile": "individual", "subject": f"CN={NAME},{agency}", "email": "an@hanam.gov.vn"}),
        ("seal", {"profile": "organization", "subject": f"CN=Ủy ban nhân dân tỉnh Hà Nam,{agency}"}),
    ):
        enrolled = _call(
            env, "POST", "/api/v1/certificates", ra, {**body, "agency_id": "ubnd-hn", "key_algorithm": "rsa2048"}
        )
        serials[role] = json.loads(enrolled)["serial"]
    official, seal = serials["person"], serials["seal"]
    _call(env, "PUT", f"/api/v1/credentials/{official}/factors/pin", ra, {"pin": "739164"})
    for serial, png, extra in ((official, signature_png(), {}), (seal, seal_png(), {"width_mm": 36})):
        image = {"image_png": base64.b64encode(png).decode(), **extra}
        _call(env, "PUT", f"/api/v1/credentials/{serial}/stamp-image", ra, image)
    pdf = decision_pdf()
    digest = base64.b64encode(hashlib.sha256(pdf).digest()).decode()
    grant = _call(
        env, "POST", f"/api/v1/credentials/{official}/activations", docs, {"hashes": [digest], "pin": "739164"}
    )
    title = urllib.parse.quote("PHÓ CHỦ TỊCH")
    steps = (
        (f"credential={official}&level=B-T&stamp=person&title_text={title}&name_text={urllib.parse.quote(NAME)}",
         {"Govsign-Activation": json.loads(grant)["activation"]}),
        (f"credential={seal}&level=B-LT&stamp=seal", {}),
        (f"credential={seal}&level=B-LT&stamp=copy&copy_form={urllib.parse.quote('SAO Y')}"
         f"&copy_agency={urllib.parse.quote('VĂN PHÒNG UBND TỈNH HÀ NAM')}", {}),
    )  # fmt: skip
    for count, (params, headers) in enumerate(steps, start=1):
        pdf = _call(env, "POST", "/api/v1/signatures/pdf", docs, pdf, params=params, **headers)
        path = work / f"decree30-{count}.pdf"
        path.write_bytes(pdf)
        text = _pdfsig(work, path)
        assert text.count("Signature is Valid.") == count, text
        assert text.count("Certificate is Trusted.") == count, text


def _totp(secret_base32: str, step: int) -> str:
    seed = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(seed, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return str((int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % 1_000_000).zfill(6)


@pytest.mark.slow
def test_pyhanko_csc_signer_signs_through_csc_v1_with_a_seal_and_an_official(
    served: tuple[Path, dict[str, str]],
) -> None:
    """A signing app that knows only the CSC API (pyHanko's CSCSigner, unchanged) signs a PDF
    with the agency's seal (SCAL 1) and with an official's key authorized by PIN and TOTP
    (SCAL 2); pdfsig finds both valid and trusted."""
    work, env = served
    _cli_json(work, env, "agency", "add", "so-tp-csc", "--name", "Sở Tư pháp")
    ra = str(_cli_json(work, env, "client", "add", "ra-csc", "--role", "ra-officer", "--agency", "so-tp-csc")["token"])
    app = str(_cli_json(work, env, "client", "add", "mysign-csc", "--role", "signer", "--agency", "so-tp-csc")["token"])
    agency = "O=Sở Tư pháp,C=VN"
    seal = json.loads(_call(env, "POST", "/api/v1/certificates", ra, {
        "profile": "organization", "subject": f"CN=Sở Tư pháp,{agency}", "key_algorithm": "rsa2048",
        "agency_id": "so-tp-csc",
    }))["serial"]  # fmt: skip
    official = json.loads(_call(env, "POST", "/api/v1/certificates", ra, {
        "profile": "individual", "subject": f"UID=CCCD:077190000123,CN=Lê Văn Ký,{agency}", "email": "ky@stp.gov.vn",
        "key_algorithm": "rsa2048", "agency_id": "so-tp-csc",
    }))["serial"]  # fmt: skip
    _call(env, "PUT", f"/api/v1/credentials/{official}/factors/pin", ra, {"pin": "620418"})
    secret = json.loads(_call(env, "POST", f"/api/v1/credentials/{official}/factors/totp", ra, {}))["secret"]
    access = json.loads(_call(env, "POST", "/csc/v1/auth/login", app, {}))["access_token"]
    unsigned = work / "csc-unsigned.pdf"
    unsigned.write_bytes(decision_pdf())
    client = Path(__file__).resolve().parents[1] / "helpers" / "csc_client.py"
    for name, serial, factors in (
        ("seal", seal, []),
        ("official", official, ["--pin", "620418", "--otp", _totp(secret, int(time.time()) // 30)]),
    ):
        out = work / f"csc-{name}.pdf"
        done = subprocess.run(
            [sys.executable, str(client), env["TEST_BASE_URL"], access, serial, str(unsigned), str(out), *factors],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        text = _pdfsig(work, out)
        assert "Signature is Valid." in text and "Certificate is Trusted." in text, name + "\n" + text
