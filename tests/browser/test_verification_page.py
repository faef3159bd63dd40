"""The public verification page in a real browser: Debian's Chromium, headless, driven through
Selenium and Debian's chromium-driver (nothing downloads a browser). Against a running
`govsign serve`, a visitor uploads a govsign-signed PDF, a tampered copy, an unsigned PDF and a
PDF whose signer was revoked before signing, and reads the conclusion and the signer's
Vietnamese name; follows a stamp's reference and confirms the document; switches to English.
axe-core (from the npm registry, installed by scripts/bootstrap.sh --tests) finds no serious or
critical accessibility problem; no request leaves the page's origin; screenshots are saved
(desktop and 360 px; GOVSIGN_SCREENSHOTS=DIR also writes them there, e.g. docs/images)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.served import ServedGovsign, serve_govsign
from signing.decree30_pages import NAME, decision_pdf, signature_png

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AGENCY_NAME = "Ủy ban nhân dân tỉnh Hà Nam"
PIN = "739164"

REVOKED_SIGN_SCRIPT = """
import sys
from govsign.config import load_settings
from govsign.services.bootstrap import Services
from govsign.signing.cms import SigningCredential
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf

services = Services.open(load_settings())
serial, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
with services.database.read_only() as ports:
    record = ports.certificates.find_by_serial(serial)[0]
    chain = []
    ca = ports.cas.get_ca(record.issuer_id)
    while ca is not None:
        chain.append(ca.certificate_der)
        ca = ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
credential = SigningCredential(key=record.key, certificate_der=record.certificate_der, chain_der=tuple(chain))
# the signing core, not the service (which refuses a revoked credential): a signature made after
# the revocation, as a stolen key would make it
signed = sign_pdf(open(source, "rb").read(), credential, services.keystore, PDFSignatureSpec(level="B-B"))
open(target, "wb").write(signed)
services.close()
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedGovsign, dict[str, Any]]]:
    """A served govsign, and the files a visitor brings: signed, tampered, unsigned, revoked."""
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; scripts/bootstrap.sh --tests installs it")
    work = tmp_path_factory.mktemp("browser")
    with serve_govsign(work, GOVSIGN_DUAL_CONTROL="") as served:
        served.cli("agency", "add", "ubnd-hn", "--name", AGENCY_NAME)
        ra = served.client("ra-hn", "ra-officer", "ubnd-hn")
        docs = served.client("docs-hn", "signer", "ubnd-hn")
        auditor = served.client("audit-hn", "auditor", "ubnd-hn")
        organization = f"O={AGENCY_NAME},C=VN"
        official = served.call("POST", "/api/v1/certificates", ra, {
            "profile": "individual", "subject": f"CN={NAME},{organization}", "email": "an@hanam.gov.vn",
            "key_algorithm": "ec-p256", "agency_id": "ubnd-hn",
        })["serial"]  # fmt: skip
        served.call("PUT", f"/api/v1/credentials/{official}/factors/pin", ra, {"pin": PIN})
        served.call(
            "PUT",
            f"/api/v1/credentials/{official}/stamp-image",
            ra,
            {"image_png": base64.b64encode(signature_png()).decode()},
        )
        original = decision_pdf()
        digest = base64.b64encode(hashlib.sha256(original).digest()).decode()
        grant = served.call(
            "POST", f"/api/v1/credentials/{official}/activations", docs, {"hashes": [digest], "pin": PIN}
        )
        params = urllib.parse.urlencode(
            {"credential": official, "level": "B-T", "stamp": "person", "title_text": "PHÓ CHỦ TỊCH", "name_text": NAME}
        )
        signed = served.call("POST", f"/api/v1/signatures/pdf?{params}", docs, original,
                             headers={"Govsign-Activation": grant["activation"]})  # fmt: skip
        events = served.call("GET", f"/api/v1/audit?object_id={official}&action=signature.create", auditor)
        reference = events["items"][-1]["details"]["verification_reference"]

        thief = served.call("POST", "/api/v1/certificates", ra, {
            "profile": "organization", "subject": f"CN=Văn thư bị lộ khóa,{organization}", "key_algorithm": "ec-p256",
            "agency_id": "ubnd-hn",
        })["serial"]  # fmt: skip
        served.call("POST", f"/api/v1/certificates/{thief}/revocation", ra, {"reason": "key-compromise"})
        (work / "to-sign.pdf").write_bytes(original)
        subprocess.run(
            [sys.executable, "-c", REVOKED_SIGN_SCRIPT, thief, str(work / "to-sign.pdf"), str(work / "revoked.pdf")],
            env=served.env, cwd=work, check=True, timeout=120, capture_output=True,
        )  # fmt: skip
        tampered = bytearray(signed)
        where = bytes(signed).index(b"stream", 200) + 20  # inside the first page's content, which is signed
        tampered[where] = ord("9") if tampered[where] != ord("9") else ord("8")
        paths = {}
        for name, data in (("signed", signed), ("tampered", bytes(tampered)), ("unsigned", original)):
            paths[name] = work / f"{name}.pdf"
            paths[name].write_bytes(data)
        paths["revoked"] = work / "revoked.pdf"
        yield served, {"paths": paths, "reference": reference, "work": work}


@pytest.fixture(scope="module")
def browser(files: tuple[ServedGovsign, dict[str, Any]]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--lang=vi", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _upload(driver: Any, base: str, path: Path, page: str = "/verify") -> str:
    from selenium.webdriver.common.by import By

    if not driver.current_url.startswith(base + page):
        driver.get(base + page)
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    for attempt in range(3):  # a page still settling (after a screenshot's resize) can lose the node
        try:
            shown = driver.find_element(By.TAG_NAME, "html")
            driver.find_element(By.ID, "document").send_keys(str(path))
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            break
        except WebDriverException:
            if attempt == 2:
                raise
            driver.get(base + page)
    WebDriverWait(driver, 120).until(expected_conditions.staleness_of(shown))  # the answer's page
    return str(driver.find_element(By.TAG_NAME, "main").text)


def _conclusion(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "conclusion").text)


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _axe(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page shown."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing; scripts/bootstrap.sh --tests installs axe-core")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations)).catch(e => done([String(e)]));"
    )
    return [v for v in violations if not isinstance(v, dict) or v.get("impact") in ("serious", "critical")]


def _screenshot(driver: Any, name: str, width: int, folder: Path) -> Path:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
    )
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    wanted = os.environ.get("GOVSIGN_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def test_a_visitor_checks_documents_follows_a_reference_and_reads_english(
    files: tuple[ServedGovsign, dict[str, Any]], browser: Any
) -> None:
    served, data = files
    base, paths, folder = served.base_url, data["paths"], data["work"]
    browser.get(base + "/")
    assert (
        browser.current_url == base + "/verify"
        and browser.find_element("tag name", "html").get_attribute("lang") == "vi"
    )
    problems = _axe(browser)
    assert problems == [], problems
    _screenshot(browser, "verify-form-desktop", 1280, folder)

    text = _upload(browser, base, paths["signed"])
    assert _conclusion(browser) == "HỢP LỆ", text
    assert NAME in text and AGENCY_NAME in text and "(UTC+07:00)" in text
    assert _axe(browser) == []
    _screenshot(browser, "verify-valid-desktop", 1280, folder)
    _screenshot(browser, "verify-valid-phone", 360, folder)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1280

    text = _upload(browser, base, paths["tampered"])
    assert _conclusion(browser) == "KHÔNG HỢP LỆ", text
    text = _upload(browser, base, paths["unsigned"])
    assert _conclusion(browser) == "Tài liệu không có chữ ký số", text
    text = _upload(browser, base, paths["revoked"])
    assert _conclusion(browser) in ("KHÔNG HỢP LỆ", "CHƯA XÁC ĐỊNH ĐƯỢC"), text
    assert "Văn thư bị lộ khóa" in text and "Đã bị thu hồi" in text
    _screenshot(browser, "verify-revoked-desktop", 1280, folder)

    browser.get(f"{base}/v/{data['reference']}")
    record = browser.find_element("tag name", "main").text
    assert NAME in record and data["reference"] in record
    text = _upload(browser, base, paths["signed"], page=f"/v/{data['reference']}")
    assert "ĐÚNG LÀ TÀI LIỆU ĐÃ KÝ" in text and "HỢP LỆ" in text
    _screenshot(browser, "verify-reference-phone", 360, folder)

    browser.find_element("link text", "English").click()
    assert browser.find_element("tag name", "html").get_attribute("lang") == "en"
    text = _upload(browser, base, paths["signed"])
    assert _conclusion(browser) == "VALID" and NAME in text
    assert _axe(browser) == []
    browser.get(base + "/verify")  # the choice is remembered
    assert browser.find_element("tag name", "html").get_attribute("lang") == "en"
    _screenshot(browser, "verify-valid-english-desktop", 1280, folder)

    outside = [url for url in _requests(browser) if not url.startswith((base, "data:"))]
    assert outside == [], outside
