"""The keystore through a real outage: SoftHSM2's token directory taken away and given back.

Runs in a child process with a token store of its own (SoftHSM2 reads its configuration once
per process, and the session's shared token must not go away under other tests). The child
reports what it saw as JSON: how soon ping said the token was gone, how many calls were refused
and how many probes reached the module while it was down (at most one a second), and how soon
the keystore was back after the directory was.

A token that comes back with another PIN is tried once: probing it every second with a PIN it
refuses would lock it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.cli import base_environment

HAMMER_SECONDS = 2.5

CHILD = """
import json, logging, os, sys, time
from pathlib import Path
from govsign.config import Settings
from govsign.errors import HSMUnavailableError
from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, SignatureScheme
from govsign.services.bootstrap import open_keystore

data, hammer = Path(sys.argv[1]), float(sys.argv[2])
settings = Settings(
    _env_file=None, data_dir=data, hsm_pin="outage-Pin-1357", public_base_url="http://127.0.0.1:1",
    pkcs11_module=None, hsm_token_label="govsign", hsm_pin_file=None,
)
keystore = open_keystore(settings, create=True)
key = keystore.generate_key_pair(label="outage-test", algorithm=KeyAlgorithm.EC_P256)


def sign():
    return keystore.sign(key, b"document", scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256)


class Probes(logging.Handler):
    count = 0

    def emit(self, record):
        if record.getMessage().startswith("HSM probe failed"):
            Probes.count += 1


logger = logging.getLogger("govsign.keystore.pkcs11")
logger.setLevel(logging.DEBUG)
logger.addHandler(Probes())
report = {"signed_before": bool(sign())}
keystore.ping()
os.rename(data / "tokens", data / "tokens.away")
gone = time.monotonic()
try:
    keystore.ping()
    report["ping_down"] = False
except HSMUnavailableError as exc:
    report["ping_down"] = True
    report["ping_message"] = exc.message
report["ping_seconds"] = time.monotonic() - gone
report["available_while_gone"] = keystore.available
refused = 0
while time.monotonic() - gone < hammer:
    try:
        sign()
    except HSMUnavailableError:
        refused += 1
    keystore.probe()
report["refused"] = refused
report["probes"] = Probes.count
os.rename(data / "tokens.away", data / "tokens")
back = time.monotonic()
while not keystore.probe() and time.monotonic() - back < 10:
    time.sleep(0.05)
report["recovered_seconds"] = time.monotonic() - back
report["signed_after"] = bool(sign())
keystore.ping()
report["outages"] = keystore.outages
keystore.close()
print(json.dumps(report))
"""


def test_token_directory_away_and_back() -> None:
    work = Path(tempfile.mkdtemp(prefix="govsign-token-outage-"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(work / "data"), str(HAMMER_SECONDS)],
            env=base_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["signed_before"]
    # the check is real: the open session would still have answered
    assert report["ping_down"] and report["ping_seconds"] < 1.0, report
    assert "PKCS" not in report["ping_message"] and "CKR_" not in report["ping_message"], report
    assert report["available_while_gone"] is False
    # refused at once, thousands of times, while the module was tried about once a second
    assert report["refused"] > 100, report
    assert report["probes"] <= HAMMER_SECONDS + 2, report
    # back within 5 s (a probe is due at most a second after the directory is back)
    assert report["recovered_seconds"] < 5.0, report
    assert report["signed_after"] and report["outages"] == 1, report


PIN_CHILD = """
import json, logging, os, subprocess, sys, time
from pathlib import Path
from govsign.config import Settings
from govsign.errors import HSMUnavailableError
from govsign.keystore.api import KeyAlgorithm
from govsign.services.bootstrap import open_keystore

data = Path(sys.argv[1])
settings = Settings(
    _env_file=None, data_dir=data, hsm_pin="outage-Pin-1357", public_base_url="http://127.0.0.1:1",
    pkcs11_module=None, hsm_token_label="govsign", hsm_pin_file=None,
)
keystore = open_keystore(settings, create=True)


class Refusals(logging.Handler):
    count = 0

    def emit(self, record):
        if "rejected the PIN" in record.getMessage():
            Refusals.count += 1


logging.getLogger("govsign.keystore.pkcs11").addHandler(Refusals())
keystore.ping()
os.rename(data / "tokens", data / "tokens.away")
(data / "tokens").mkdir(mode=0o700)
subprocess.run(
    ["softhsm2-util", "--init-token", "--free", "--label", "govsign", "--so-pin", "so-0000", "--pin", "other-Pin-0000"],
    check=True, capture_output=True,
)
started = time.monotonic()
while time.monotonic() - started < 2.5:
    keystore.probe()
    try:
        keystore.ping()
    except HSMUnavailableError:
        pass
    time.sleep(0.05)
print(json.dumps({"available": keystore.available, "pin_refusals": Refusals.count}))
"""


def test_a_token_back_with_another_pin_is_tried_once_and_never_locked() -> None:
    work = Path(tempfile.mkdtemp(prefix="govsign-token-pin-"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", PIN_CHILD, str(work / "data")],
            env=base_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"available": False, "pin_refusals": 1}, (report, done.stderr[-2000:])
