"""Helpers for the CLI tests: run ``govsign`` as a subprocess against a real data dir, a real
SoftHSM2 token and a real database, and look at the results with outside tools (openssl,
pkilint, pkcs11-tool) and by reading the database directly."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.prefix) / "bin"
GOVSIGN = str(BIN / "govsign") if (BIN / "govsign").exists() else (shutil.which("govsign") or "govsign")
LINT_CERT = str(BIN / "lint_pkix_cert") if (BIN / "lint_pkix_cert").exists() else "lint_pkix_cert"
LINT_CHAIN = (
    str(BIN / "lint_pkix_signer_signee_cert_chain")
    if (BIN / "lint_pkix_signer_signee_cert_chain").exists()
    else "lint_pkix_signer_signee_cert_chain"
)
SOFTHSM_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
SOFTHSM_MODULE = next((path for path in SOFTHSM_CANDIDATES if Path(path).is_file()), SOFTHSM_CANDIDATES[0])

PUBLIC_BASE_URL = "http://pki.example.gov.vn"
TOKEN_LABEL = "govsign"
TEST_PIN = "cli-test-Pin-4321"
INTERNAL_ERROR_TEXT = "internal error"
COMMAND_TIMEOUT = 180

#: The Vietnamese subject of the brief, in RFC 4514 order (most specific first).
VIETNAMESE_SUBJECT = (
    "UID=CCCD:077190000123,CN=Nguyễn Thị Yến,OU=Văn phòng,O=Tỉnh ủy Bà Rịa – Vũng Tàu,L=Bà Rịa – Vũng Tàu,C=VN"
)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"{' '.join(self.args)} -> exit {self.returncode}\nstdout: {self.stdout[:2000]}\nstderr: {self.stderr[:2000]}"


def base_environment() -> dict[str, str]:
    """The caller's environment without any GOVSIGN_* setting or SoftHSM2 configuration."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GOVSIGN_") and key not in ("SOFTHSM2_CONF", "PYTHONWARNINGS")
    }
    env["LC_ALL"] = "C.UTF-8"
    env["LANG"] = "C.UTF-8"
    return env


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    input_text: str | None = None,
) -> Result:
    completed = subprocess.run(
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        input=input_text.encode("utf-8") if input_text is not None else None,
        check=False,
    )
    return Result(
        args=tuple(str(arg) for arg in args),
        returncode=completed.returncode,
        stdout=completed.stdout.decode("utf-8", errors="replace"),
        stderr=completed.stderr.decode("utf-8", errors="replace"),
    )


def assert_ok(result: Result) -> None:
    assert result.returncode == 0, result.describe()


def assert_one_sentence_error(result: Result, *mentions: str) -> str:
    """A refusal: non-zero exit, and stderr is one short sentence (no traceback, not the generic
    internal-error message) that mentions each of ``mentions`` (case-insensitive)."""
    assert result.returncode != 0, f"the command was accepted: {result.describe()}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.describe()
    assert len(lines) == 1, f"stderr should be one sentence: {result.describe()}"
    message = lines[0].strip()
    assert len(message) <= 400, f"stderr is too long for one sentence: {message!r}"
    assert message.endswith((".", "!", ")")), f"not a complete sentence: {message!r}"
    assert INTERNAL_ERROR_TEXT not in message.lower(), f"a refusal reported as an internal error: {result.describe()}"
    for mention in mentions:
        assert mention.lower() in message.lower(), f"{mention!r} is not named in {message!r}"
    return message


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- outside tools -------------------------------------------------------------------------------


def openssl(*args: str, env: Mapping[str, str] | None = None, input_text: str | None = None) -> Result:
    return run(["openssl", *args], env=env or base_environment(), input_text=input_text)


def openssl_verify(root: Path, leaf: Path, *untrusted: Path) -> Result:
    args = ["verify", "-x509_strict", "-CAfile", str(root)]
    for path in untrusted:
        args += ["-untrusted", str(path)]
    return openssl(*args, str(leaf))


def subject_text(pem_path: Path) -> str:
    """The subject as openssl prints it with -nameopt utf8,sep_comma_plus (in DER order)."""
    result = openssl("x509", "-in", str(pem_path), "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus")
    assert_ok(result)
    return result.stdout.strip().removeprefix("subject=").strip()


def rfc4514_to_der_order(text: str) -> str:
    """'UID=a,CN=b,C=VN' (RFC 4514, most specific first) -> 'C=VN,CN=b,UID=a' (openssl's DER order).
    Only for subjects without escaped commas."""
    return ",".join(reversed(text.split(",")))


def pkilint(*args: str) -> Result:
    """Run a pkilint command with -s WARNING; clean means exit 0 and no output."""
    tool = LINT_CHAIN if args[0] == "chain" else LINT_CERT
    return run([tool, "lint", "-s", "WARNING", *args[1:]], env=base_environment())


def assert_lint_clean(*paths: Path, chain: bool = False) -> None:
    result = pkilint("chain" if chain else "cert", *(str(path) for path in paths))
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "", f"pkilint findings for {[p.name for p in paths]}:\n{output}"


def subject_attribute_encodings(pem: str) -> list[tuple[str, str, int]]:
    """(attribute type, value, DER tag) for each subject attribute, in DER order."""
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    _type, _headers, der = asn1_pem.unarmor(pem.encode("ascii"))
    certificate = asn1_x509.Certificate.load(der)
    found = []
    for rdn in certificate.subject.chosen:
        for atv in rdn:
            value = atv["value"]
            found.append((atv["type"].dotted, value.native, value.dump()[0]))
    return found


UTF8STRING_TAG = 0x0C
PRINTABLESTRING_TAG = 0x13


# -- pkcs11-tool ---------------------------------------------------------------------------------


def parse_pkcs11_objects(listing: str) -> list[dict[str, str]]:
    """Blocks of ``pkcs11-tool --list-objects`` output: {"kind": first line, "label": ..., "ID": ...}."""
    blocks: list[dict[str, str]] = []
    for line in listing.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            blocks.append({"kind": line.strip()})
        elif blocks and ":" in line:
            key, _, value = line.strip().partition(":")
            blocks[-1][key.strip()] = value.strip()
    return blocks


# -- a deployment: one data dir, one database, one token ----------------------------------------


@dataclass(frozen=True)
class State:
    """What a refused command must leave unchanged, read outside the CLI."""

    certificates: tuple[tuple[Any, ...], ...]
    revocations: tuple[tuple[Any, ...], ...]
    authorities: tuple[tuple[Any, ...], ...]
    token_objects: tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class View:
    """The state read directly, and what ``govsign cert list --json`` showed for it."""

    state: State
    listing: tuple[tuple[Any, ...], ...]


def assert_same_state(before: State, after: State) -> None:
    assert after.token_objects == before.token_objects, "the token's objects changed"
    assert after.certificates == before.certificates, "the certificates table changed"
    assert after.revocations == before.revocations, "the revocations table changed"
    assert after.authorities == before.authorities, "the CAs changed"


def assert_same_listing(before: Sequence[Any], after: Sequence[Any]) -> None:
    assert len(after) == len(before), ("cert list --json changed length", set(after) ^ set(before))
    assert list(after) == list(before), "cert list --json changed"


def assert_same_view(before: View, after: View) -> None:
    assert_same_listing(before.listing, after.listing)
    assert_same_state(before.state, after.state)


@dataclass
class Deployment:
    """An initialised govsign installation used through its CLI.

    Commands on one deployment never overlap: ``run`` and ``unchanged`` hold its lock (work on
    the deployment may come from a background thread, see conftest.py)."""

    name: str
    workdir: Path
    data_dir: Path
    database_url: str | None = None
    schema: str | None = None
    admin_url: str | None = None
    pin: str | None = TEST_PIN
    init_args: tuple[str, ...] = ()
    root_key: str = "rsa4096"
    issuing_key: str = "rsa3072"
    init_result: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _last_view: View | None = field(default=None, repr=False)
    _service_pems: dict[str, Path] | None = field(default=None, repr=False)

    # -- running the CLI -----------------------------------------------------------------------

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = base_environment()
        env["GOVSIGN_DATA_DIR"] = str(self.data_dir)
        env["GOVSIGN_PUBLIC_BASE_URL"] = PUBLIC_BASE_URL
        if self.pin is not None:
            env["GOVSIGN_HSM_PIN"] = self.pin
        if self.database_url is not None:
            env["GOVSIGN_DATABASE_URL"] = self.database_url
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
        **overrides: str | None,
    ) -> Result:
        with self.lock:
            return run([GOVSIGN, *args], env=env or self.env(**overrides), cwd=self.workdir, timeout=timeout)

    def ok(self, *args: str, **overrides: str | None) -> Any:
        """Run a command with --json that must succeed; its parsed output."""
        result = self.run(*args, "--json", env=self.env(**overrides))
        assert result.returncode == 0, result.describe()
        return json.loads(result.stdout)

    def issue(self, *args: str) -> dict[str, Any]:
        return self.ok("cert", "issue", *args)  # type: ignore[no-any-return]

    # -- looking at the token and the database from outside ------------------------------------

    @property
    def effective_pin(self) -> str:
        if self.pin is not None:
            return self.pin
        return (self.data_dir / "hsm-user-pin").read_text(encoding="utf-8").splitlines()[0].strip()

    def pkcs11_tool(self, *args: str, pin: str | None = None) -> Result:
        env = base_environment()
        env["SOFTHSM2_CONF"] = str(self.data_dir / "softhsm2.conf")
        module_args = ["--module", SOFTHSM_MODULE, "--token-label", TOKEN_LABEL]
        login = ["--login", "--pin", pin if pin is not None else self.effective_pin]
        with self.lock:
            return run(["pkcs11-tool", *module_args, *login, *args], env=env)

    def token_objects(self) -> list[dict[str, str]]:
        result = self.pkcs11_tool("--list-objects")
        assert_ok(result)
        return parse_pkcs11_objects(result.stdout)

    def private_keys(self) -> list[dict[str, str]]:
        result = self.pkcs11_tool("--list-objects", "--type", "privkey")
        assert_ok(result)
        return parse_pkcs11_objects(result.stdout)

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        if self.database_url is None:
            connection = sqlite3.connect(f"file:{self.data_dir / 'govsign.sqlite3'}?mode=ro", uri=True, timeout=30)
            try:
                yield connection
            finally:
                connection.close()
            return
        import psycopg

        assert self.admin_url is not None and self.schema is not None
        with psycopg.connect(self.admin_url, options=f"-csearch_path={self.schema}") as pg_connection:
            yield pg_connection

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.lock, self._db() as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]

    def state(self) -> State:
        objects = sorted(tuple(sorted(block.items())) for block in self.token_objects())
        revocations = self.query(
            "SELECT id, certificate_id, reason, revoked_at, released_at FROM revocations ORDER BY id"
        )
        return State(
            certificates=tuple(self.query("SELECT id, serial_hex, status FROM certificates ORDER BY id")),
            revocations=tuple(tuple(str(value) for value in row) for row in revocations),
            authorities=tuple(self.query("SELECT id, serial_hex FROM certificate_authorities ORDER BY id")),
            token_objects=tuple(objects),
        )

    def cert_list(self) -> list[dict[str, Any]]:
        listed = self.ok("cert", "list")
        assert isinstance(listed, list), listed
        return listed

    def view(self, *, fresh: bool) -> View:
        """The state and what ``cert list --json`` shows. With ``fresh=False`` the last listing is
        reused when the database rows and the token's objects are the same as when it was taken
        (the listing is derived from them); ``fresh=True`` always runs ``cert list --json``."""
        with self.lock:
            state = self.state()
            if not fresh and self._last_view is not None and self._last_view.state == state:
                return self._last_view
            listing = tuple(
                sorted((item["serial"], item["status"], item["revocation_reason"]) for item in self.cert_list())
            )
            self._last_view = View(state=state, listing=listing)
            return self._last_view

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """Assert that the block changes neither the certificates (database rows and
        ``cert list --json``) nor the objects on the token."""
        with self.lock:
            before = self.view(fresh=False)
            yield
            assert_same_view(before, self.view(fresh=True))

    # -- files ---------------------------------------------------------------------------------

    def pem_file(self, name: str, pem: str) -> Path:
        path = self.workdir / f"{name}.pem"
        path.write_text(pem, encoding="ascii")
        return path

    @property
    def root_pem(self) -> Path:
        return self.pem_file("root", self.init_result["root_ca"]["certificate_pem"])

    @property
    def issuing_pem(self) -> Path:
        return self.pem_file("issuing", self.init_result["issuing_ca"]["certificate_pem"])

    def service_pems(self) -> dict[str, Path]:
        """The OCSP responder and TSA certificates that init created, from ``cert list``."""
        if self._service_pems is None:
            found = {}
            for item in self.cert_list():
                if item["profile"] in ("ocsp-responder", "tsa"):
                    found[item["profile"]] = self.pem_file(item["profile"], item["certificate_pem"])
            self._service_pems = found
        return self._service_pems
