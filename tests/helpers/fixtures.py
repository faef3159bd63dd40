"""The suite's shared fixtures (a pytest plugin, registered by the root conftest): databases
(SQLite, PostgreSQL), the SoftHSM2 token and initialised CAs.

One PKCS#11 library per process: python-pkcs11 loads SoftHSM2 once, and SoftHSM2 reads
SOFTHSM2_CONF only when the library is initialised. So every in-process service of this test
session uses ONE embedded data dir for its token (``hsm_data_dir``); their databases live
elsewhere (``database_url`` of the settings). A service opened in-process on another data dir
would silently talk to this token (same label and PIN); to test a fresh embedded token, run
``govsign`` in a subprocess. If a test points SOFTHSM2_CONF elsewhere anyway, the autouse
``_shared_softhsm_conf`` fixture puts it back and reinitialises the module after that test.

Key generation of big RSA keys is slow in SoftHSM2, so the CA hierarchy is created once per
backend per session (``initialized``), with small keys: root EC P-256, issuing CA
RSA-2048 (so subscriber certificates are RSA-signed, as in production), services EC P-256.
Tests that share it must compare counts before and after, never assume an empty database.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from psycopg import sql

from govsign.clock import FixedClock, SystemClock
from govsign.config import Settings, find_softhsm2_library
from govsign.keystore.api import KeyAlgorithm
from govsign.keystore.pkcs11 import PKCS11KeyStore, reload_module_after_token_change
from govsign.keystore.token_init import create_token
from govsign.pki.hierarchy import HierarchyResult, HierarchySpec
from govsign.services.bootstrap import Services, open_keystore, prepare_embedded_hsm
from helpers.deployment import Deployment

#: User PIN of every token the tests create (never a real PIN).
TEST_HSM_PIN = "govsign-test-pin-0000"
#: Base URL written into test certificates.
TEST_BASE_URL = "http://pki.example.gov.vn"
#: Label of a second token on the shared SoftHSM2 store that no session ever logs in to
#: (a wrong PIN is only checked by a token that is not logged in already).
SPARE_TOKEN_LABEL = "govsign-spare"
#: The hierarchy of ``initialized_runtime``: small keys, at least one RSA CA, and an issuing CA
#: valid for 3 years (shorter than the 5-year subscriber limit, so "past the issuer's notAfter"
#: can be tested apart from "longer than 5 years").
TEST_HIERARCHY = HierarchySpec(
    root_algorithm=KeyAlgorithm.EC_P256,
    root_validity_years=4,
    issuing_algorithm=KeyAlgorithm.RSA2048,
    issuing_validity_years=3,
    service_algorithm=KeyAlgorithm.EC_P256,
)
POSTGRES_ENV = "GOVSIGN_TEST_POSTGRES_URL"

_shared_conf: str | None = None


# -- settings --------------------------------------------------------------------------------


def build_settings(data_dir: Path, *, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for tests: data_dir, the test base URL and PIN, an optional database URL."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "public_base_url": TEST_BASE_URL,
        "hsm_pin": TEST_HSM_PIN,
        "database_url": database_url,
        # Explicit, so GOVSIGN_* variables of the developer's shell cannot leak in.
        "pkcs11_module": None,
        "hsm_token_label": "govsign",
        "hsm_pin_file": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """``make_settings(data_dir, database_url=None, **overrides)`` -> govsign Settings for tests."""
    return build_settings


# -- PostgreSQL -------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """The URL as libpq/psycopg reads it (no SQLAlchemy driver suffix)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.split("+")[0] in ("postgresql", "postgres") else url


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` added to its query."""
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}', safe='')}"


@contextmanager
def postgres_schema(server_url: str, prefix: str = "gs") -> Iterator[str]:
    """Create a private schema on the server, yield a URL whose search_path is it, drop it."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_search_path(server_url, schema)
    finally:
        with psycopg.connect(_libpq_url(server_url), autocommit=True) as connection:
            connection.execute("SET lock_timeout = '20s'")
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The server from GOVSIGN_TEST_POSTGRES_URL; skips the test when it is unset."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; the PostgreSQL tests need a server (see scripts/test).")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema private to this session (dropped at the end)."""
    with postgres_schema(postgres_server_url) as url:
        yield url


# -- databases --------------------------------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def session_workspace() -> Iterator[Path]:
    """A directory for this session's shared files, removed at the end.

    Not tmp_path_factory: pytest sessions started by others in the same tree prune its base
    dirs, and this one holds the token that child processes open too.
    """
    path = Path(tempfile.mkdtemp(prefix="govsign-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_url(session_workspace: Path) -> str:
    """A SQLite database file of this session, outside the HSM data dir."""
    return f"sqlite:///{session_workspace / 'sqlite' / 'govsign.sqlite3'}"


@pytest.fixture(scope="session", params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """The session database URL of each backend (sqlite, postgresql); shared, never assume it empty."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def fresh_database_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the same backend as ``db_backend``, private to one test."""
    if db_backend.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    server = str(request.getfixturevalue("postgres_server_url"))
    with postgres_schema(server, prefix="gs_t") as url:
        yield url


# -- the SoftHSM2 token -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def softhsm2_module() -> str:
    """Path of SoftHSM2's PKCS#11 library; the suite fails (never skips) without it."""
    found = find_softhsm2_library()
    if found is None:
        pytest.fail("SoftHSM2 is not installed; scripts/bootstrap.sh installs what the suite needs.")
    return str(found)


@pytest.fixture(scope="session")
def hsm_data_dir(session_workspace: Path, softhsm2_module: str) -> Path:
    """The one embedded data dir (softhsm2.conf, tokens/) whose token every in-process services uses."""
    global _shared_conf
    data_dir = session_workspace / "hsm"
    settings = build_settings(data_dir)
    prepare_embedded_hsm(settings, create=True)  # writes softhsm2.conf, sets SOFTHSM2_CONF
    create_token(
        module_path=softhsm2_module,
        token_label=SPARE_TOKEN_LABEL,
        so_pin="spare-so-pin-0000",
        user_pin=TEST_HSM_PIN,
        env=dict(os.environ),
    )
    # If an earlier test loaded SoftHSM2 with another configuration, make it read this one.
    reload_module_after_token_change(softhsm2_module)
    _shared_conf = os.environ["SOFTHSM2_CONF"]
    open_keystore(settings, create=True).close()  # creates the main token "govsign"
    return data_dir


@pytest.fixture(autouse=True)
def _shared_softhsm_conf() -> Iterator[None]:
    """After each test, point SOFTHSM2_CONF back at the shared token if the test moved it."""
    yield
    if _shared_conf is not None and os.environ.get("SOFTHSM2_CONF") != _shared_conf:
        os.environ["SOFTHSM2_CONF"] = _shared_conf
        module = find_softhsm2_library()
        if module is not None:
            reload_module_after_token_change(str(module))


@pytest.fixture(scope="session")
def hsm_pin() -> str:
    """The user PIN of every test token (TEST_HSM_PIN)."""
    return TEST_HSM_PIN


@pytest.fixture(scope="session")
def spare_token_label(hsm_data_dir: Path) -> str:
    """A second token on the shared store that no session logs in to (for wrong-PIN tests)."""
    return SPARE_TOKEN_LABEL


@pytest.fixture(scope="session")
def keystore(hsm_data_dir: Path, softhsm2_module: str) -> Iterator[PKCS11KeyStore]:
    """A PKCS11KeyStore logged in to the shared token (label govsign, PIN TEST_HSM_PIN)."""
    store = PKCS11KeyStore(module_path=softhsm2_module, token_label="govsign", pin=TEST_HSM_PIN)
    store.open()
    yield store
    store.close()


@pytest.fixture
def hsm_settings(hsm_data_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    """``hsm_settings(database_url=None, **overrides)``: the shared token, a fresh SQLite file by default."""

    def build(database_url: str | None = None, **overrides: Any) -> Settings:
        url = database_url or f"sqlite:///{tmp_path / 'govsign.sqlite3'}"
        return build_settings(hsm_data_dir, database_url=url, **overrides)

    return build


# -- initialised CAs --------------------------------------------------------------------------


class RunningClock(FixedClock):
    """The system clock, moved by ``advance`` (a FixedClock's interface, for the shared deployment)."""

    def __init__(self) -> None:
        super().__init__(SystemClock().now())
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return SystemClock().now() + self._offset

    def advance(self, delta: dt.timedelta) -> None:
        self._offset += delta


class _DeploymentPool:
    """Initialised deployments by database URL, opened once per session and closed at its end."""

    def __init__(self, hsm_data_dir: Path) -> None:
        self.hsm_data_dir = hsm_data_dir
        self.deployments: dict[str, Deployment] = {}

    def get(self, database_url: str) -> Deployment:
        deployment = self.deployments.get(database_url)
        if deployment is None:
            settings = build_settings(self.hsm_data_dir, database_url=database_url)
            # the shared deployment's time runs: the apps the tests open over the same database
            # run on the system clock, and what they store (OCSP responses, CRLs) must not lie in
            # this deployment's future (verifications refuse revocation data from the future)
            clock = RunningClock()
            services = Services.open(settings, initialize=True, clock=clock)
            hierarchy = services.hierarchy.initialize(TEST_HIERARCHY, actor="test:conftest")
            deployment = Deployment(settings=settings, services=services, hierarchy=hierarchy, clock=clock)
            self.deployments[database_url] = deployment
        return deployment

    def close(self) -> None:
        for deployment in self.deployments.values():
            deployment.services.close()
        self.deployments.clear()


@pytest.fixture(scope="session")
def _deployment_pool(hsm_data_dir: Path) -> Iterator[_DeploymentPool]:
    pool = _DeploymentPool(hsm_data_dir)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def initialized(db_backend: str, _deployment_pool: _DeploymentPool) -> Deployment:
    """The shared deployment of each backend: the CA hierarchy initialised on the shared token,
    a FixedClock (tests that move it use ``make_deployment``). Never assume it empty."""
    return _deployment_pool.get(db_backend)


@pytest.fixture(scope="session")
def initialized_services(initialized: Deployment) -> Services:
    """The services of ``initialized``."""
    return initialized.services


@pytest.fixture(scope="session")
def hierarchy_spec() -> HierarchySpec:
    """The HierarchySpec that ``initialized`` was initialised with (small keys)."""
    return TEST_HIERARCHY


@pytest.fixture(scope="session")
def hierarchy(initialized: Deployment) -> HierarchyResult:
    """What ``hierarchy.initialize`` returned for ``initialized`` (root, issuing CA, OCSP, TSA)."""
    return initialized.hierarchy


#: The hierarchy of ``make_deployment``: the algorithms and validities of the shared one, so the
#: CA keys already on the token (same labels) are reused and only service keys are generated.
DEPLOYMENT_HIERARCHY = TEST_HIERARCHY


@pytest.fixture
def make_deployment(
    fresh_database_url: str, hsm_data_dir: Path, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., Deployment]]:
    """``make_deployment(**settings_overrides)`` -> a Deployment in this test's own database (same
    backend as ``db_backend``), on the shared token, with a FixedClock the test may move: for
    tests that move the clock, roll the responder over or run the background loop, which would
    disturb the shared ``initialized``. A deployment costs about a second."""
    opened: list[Services] = []

    def build(**overrides: Any) -> Deployment:
        assert not opened, "one deployment per test (one fresh database)"
        settings = make_settings(hsm_data_dir, database_url=fresh_database_url, **overrides)
        clock = FixedClock(SystemClock().now())
        services = Services.open(settings, initialize=True, clock=clock)
        opened.append(services)
        hierarchy = services.hierarchy.initialize(DEPLOYMENT_HIERARCHY, actor="test:deployment")
        return Deployment(settings=settings, services=services, hierarchy=hierarchy, clock=clock)

    yield build
    for services in opened:
        services.close()
