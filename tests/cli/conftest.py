"""Fixtures of the CLI tests: one initialised deployment per storage backend for the whole
session (real SoftHSM2 token, real SQLite or PostgreSQL), plus a small SQLite deployment
without a configured PIN for the tests that change or inspect the data dir itself.

PostgreSQL runs only when GOVSIGN_TEST_POSTGRES_URL is set; each session works in a private
schema (gs_cli_<hex>) that is dropped at the end.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.cli import Deployment, openssl

from .refusal_cases import DATA_CASES, SETTINGS_CASES, Battery, run_battery

POSTGRES_URL_VARIABLE = "GOVSIGN_TEST_POSTGRES_URL"

#: The SQLite deployment keeps the defaults (RSA-4096 root, RSA-3072 issuing, RSA-2048 services);
#: the PostgreSQL one uses fast EC keys (and so covers an ECDSA P-384 root too).
FAST_INIT_ARGS = ("--root-key", "ec-p384", "--issuing-key", "ec-p256", "--service-key", "ec-p256")
SMALL_INIT_ARGS = ("--root-key", "ec-p256", "--issuing-key", "ec-p256", "--service-key", "ec-p256")

#: PostgreSQL first: its tests then run while the slower SQLite init (RSA-4096) and the SQLite
#: refusal battery proceed in the background.
BACKENDS = [
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("sqlite", id="sqlite"),
]


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class Deployments:
    """Creates each deployment once per session and runs its refusal battery in background
    threads, so that the work on different deployments overlaps on a multi-core machine. Work on
    one deployment never overlaps (see Deployment.lock).

    The deployments are created as soon as the session starts. A deployment's refusal battery
    starts when the tests move on to another deployment (or when its results are asked for), so
    it runs while that deployment is otherwise idle; the refusal tests run last (see
    pytest_collection_modifyitems)."""

    def __init__(self, workspace: Path, csrs: dict[str, Path]) -> None:
        self.workspace = workspace
        self.csrs = csrs
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="govsign-cli")
        self._lock = threading.RLock()
        self._created: dict[str, Future[Deployment]] = {}
        self._refusals: dict[str, Future[Battery]] = {}
        self._schemas: list[tuple[str, str]] = []
        self.batteries: list[str] = []
        """The deployments whose refusal battery the selected tests need."""

    def entering(self, kind: str) -> None:
        """The tests now work on ``kind``: run the other deployments' batteries meanwhile."""
        for other in self.batteries:
            if other != kind:
                self.start_refusals(other)

    def start(self, kind: str) -> Future[Deployment]:
        with self._lock:
            if kind not in self._created:
                self._created[kind] = self._executor.submit(self._create, kind)
            return self._created[kind]

    def get(self, kind: str) -> Deployment:
        return self.start(kind).result()

    def start_refusals(self, kind: str) -> Future[Battery]:
        with self._lock:
            if kind not in self._refusals:
                self.start(kind)  # submitted first, so the battery never waits for a queued job
                self._refusals[kind] = self._executor.submit(self._refuse, kind)
            return self._refusals[kind]

    def refusals(self, kind: str) -> Battery:
        return self.start_refusals(kind).result()

    def _refuse(self, kind: str) -> Battery:
        cases = dict(DATA_CASES)
        if kind == "sqlite":
            cases.update(SETTINGS_CASES)
        return run_battery(self.get(kind), self.csrs, cases)

    def _create(self, kind: str) -> Deployment:
        workdir = self.workspace / kind
        workdir.mkdir()
        data_dir = workdir / "data"  # created by govsign init
        if kind == "sqlite":
            deployment = Deployment(name=kind, workdir=workdir, data_dir=data_dir)
        elif kind == "postgresql":
            url = os.environ.get(POSTGRES_URL_VARIABLE)
            if not url:
                pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
            admin_url = _libpq_url(url)
            schema = f"gs_cli_{secrets.token_hex(6)}"
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'CREATE SCHEMA "{schema}"')
            with self._lock:
                self._schemas.append((admin_url, schema))
            separator = "&" if "?" in admin_url else "?"
            deployment = Deployment(
                name=kind,
                workdir=workdir,
                data_dir=data_dir,
                database_url=f"{admin_url}{separator}options=-csearch_path%3D{schema}",
                admin_url=admin_url,
                schema=schema,
                init_args=FAST_INIT_ARGS,
                root_key="ec-p384",
                issuing_key="ec-p256",
            )
        elif kind == "small":
            deployment = Deployment(
                name=kind,
                workdir=workdir,
                data_dir=data_dir,
                pin=None,
                init_args=SMALL_INIT_ARGS,
                root_key="ec-p256",
                issuing_key="ec-p256",
            )
        else:
            raise ValueError(kind)
        result = deployment.run("init", *deployment.init_args, "--json")
        assert result.returncode == 0, f"govsign init failed for the {kind} deployment: {result.describe()}"
        deployment.init_result = json.loads(result.stdout)
        return deployment

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if not self._schemas:
            return
        import psycopg

        for admin_url, schema in self._schemas:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the refusal tests after the other CLI tests (keeping the order of everything else):
    by then the refusal batteries have run in the background (see Deployments)."""
    refusal_tests = [item for item in items if _is_refusal_test(item)]
    if not refusal_tests:
        return
    rest = [item for item in items if not _is_refusal_test(item)]
    after = max((index + 1 for index, item in enumerate(rest) if _is_cli_test(item)), default=0)
    items[:] = rest[:after] + refusal_tests + rest[after:]


def _is_cli_test(item: pytest.Item) -> bool:
    return Path(str(item.path)).parent == Path(__file__).parent


def _is_refusal_test(item: pytest.Item) -> bool:
    return _is_cli_test(item) and "refusals" in getattr(item, "fixturenames", ())


def _wanted(items: list[pytest.Item]) -> tuple[list[str], list[str]]:
    """Which deployments and refusal batteries the selected tests use, in the order they run."""
    deployments: list[str] = []
    refusals: list[str] = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        kinds = []
        if "deployment" in names and callspec is not None and "deployment" in callspec.params:
            kinds.append(callspec.params["deployment"])
        if "sqlite_deployment" in names:
            kinds.append("sqlite")
        if "small_deployment" in names:
            kinds.append("small")
        for kind in kinds:
            if kind not in deployments:
                deployments.append(kind)
            if "refusals" in names and kind not in refusals:
                refusals.append(kind)
    return deployments, refusals


@pytest.fixture(scope="session")
def cli_workspace() -> Iterator[Path]:
    # Not tmp_path_factory: other sessions running in the same tree rotate its base dirs.
    path = Path(tempfile.mkdtemp(prefix="govsign-cli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def deployments(request: pytest.FixtureRequest, cli_workspace: Path, csrs: dict[str, Path]) -> Iterator[Deployments]:
    made = Deployments(cli_workspace, csrs)
    kinds, made.batteries = _wanted(request.session.items)
    for kind in kinds:
        made.start(kind)
    yield made
    made.close()


@pytest.fixture(scope="session", params=BACKENDS)
def deployment(request: pytest.FixtureRequest, deployments: Deployments) -> Deployment:
    """An initialised deployment on each storage backend."""
    deployments.entering(request.param)
    return deployments.get(request.param)


@pytest.fixture(scope="session")
def sqlite_deployment(deployments: Deployments) -> Deployment:
    """The SQLite deployment, for checks that do not concern storage."""
    deployments.entering("sqlite")
    return deployments.get("sqlite")


@pytest.fixture(scope="session")
def small_deployment(deployments: Deployments) -> Deployment:
    """A separate SQLite deployment with EC keys and a generated PIN (GOVSIGN_HSM_PIN unset)."""
    deployments.entering("small")
    return deployments.get("small")


@pytest.fixture(scope="session")
def refusals(deployments: Deployments) -> Callable[[str], Battery]:
    """The outcomes of the refusal battery of a deployment, by case name."""
    return deployments.refusals


@pytest.fixture(scope="session")
def csrs(cli_workspace: Path) -> dict[str, Path]:
    """PKCS#10 requests made with openssl: good ones and broken ones."""
    folder = cli_workspace / "csrs"
    folder.mkdir()

    def req(name: str, *args: str) -> Path:
        out = folder / f"{name}.csr"
        result = openssl(
            "req", "-new", "-nodes", "-utf8", "-keyout", str(folder / f"{name}.key"), *args, "-out", str(out)
        )
        assert result.returncode == 0, result.describe()
        return out

    made = {
        "organization": req(
            "organization",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/C=VN/L=Đà Nẵng/O=Ủy ban nhân dân thành phố Đà Nẵng/CN=Sở Y tế/UID=MST:0400260612",
        ),
        "device": req(
            "device",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-subj",
            "/C=VN/O=Văn phòng Chính phủ/CN=Hệ thống quản lý văn bản",
        ),
        "rekey": req("rekey", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/C=VN/CN=Rekey"),
        "valid": req("valid", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/C=VN/CN=Valid"),
        "revoked": req("revoked", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/C=VN/CN=Revoked"),
        "rsa1024": req("rsa1024", "-newkey", "rsa:1024", "-subj", "/C=VN/CN=Weak"),
        "sha1": req("sha1", "-newkey", "rsa:2048", "-sha1", "-subj", "/C=VN/CN=Sha One"),
    }
    garbage = folder / "garbage.csr"
    body = base64.encodebytes(secrets.token_bytes(600)).decode("ascii")
    garbage.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n")
    made["garbage"] = garbage

    der = folder / "device.der"
    result = openssl("req", "-in", str(made["device"]), "-outform", "DER", "-out", str(der))
    assert result.returncode == 0, result.describe()
    data = bytearray(der.read_bytes())
    data[-5] ^= 0xFF  # inside the signature value
    badsig = folder / "badsig.der"
    badsig.write_bytes(bytes(data))
    badsig_pem = folder / "badsig.csr"
    result = openssl("req", "-inform", "DER", "-in", str(badsig), "-out", str(badsig_pem))
    assert result.returncode == 0, result.describe()
    made["badsig"] = badsig_pem
    return made


@pytest.fixture(scope="module")
def own_deployment(cli_workspace: Path) -> Deployment:
    """A small SQLite deployment (EC keys, generated PIN) of the module's own, outside the shared
    ones and their refusal batteries: for tests that change what the shared ones must keep (the
    service certificates, keys on the token made by hand)."""
    workdir = Path(tempfile.mkdtemp(prefix="own-", dir=cli_workspace))
    deployment = Deployment(
        name="own",
        workdir=workdir,
        data_dir=workdir / "data",
        pin=None,
        init_args=SMALL_INIT_ARGS,
        root_key="ec-p256",
        issuing_key="ec-p256",
    )
    result = deployment.run("init", *deployment.init_args, "--json")
    assert result.returncode == 0, result.describe()
    deployment.init_result = json.loads(result.stdout)
    return deployment
