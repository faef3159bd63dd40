"""tryLater when the HSM is gone while the database still works, without mocks: a child process
runs a service on its own embedded SoftHSM2 token and moves the token store away under it (the
shared token of this process must stay usable, and SoftHSM2 does not recover in-process)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from govsign.api.app import create_app
from govsign.config import Settings
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from helpers.ca import make_csr
from helpers.protocols import asn1_cert_id, asn1_request, response_status


def test_nonce_requests_get_try_later_and_pre_produced_answers_still_flow_when_the_hsm_is_gone() -> None:
    from .workers import answers_with_the_token_gone

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    with tempfile.TemporaryDirectory(prefix="govsign-unplug-") as workdir:
        child = context.Process(
            target=answers_with_the_token_gone,
            args=(str(Path(workdir) / "data"), [make_csr("Giữ Nguyên"), make_csr("Thu Hồi Sau")], results),
        )
        child.start()
        report: dict[str, Any] = results.get(timeout=120)
        child.join(timeout=30)
    assert report["error"] is None, report["error"]
    assert child.exitcode == 0

    assert report["before_nonce"] == "successful", "the HSM worked before it went away"
    assert report["nonce"] == ("try_later", "try_later"), "a nonce needs a live signature: tryLater"
    status, pre_produced, der = report["plain"]
    assert status == "successful" and pre_produced, "a pre-produced answer needs no HSM"
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == report["kept_serial"]
    response.certificates[0].verify_directly_issued_by(x509.load_der_x509_certificate(report["issuing_der"]))
    # A revocation while the HSM is away deletes the stored "good" instead of leaving it: the
    # next plain request is signed live, so it gets tryLater rather than a stale "good".
    assert report["after_revocation"] == ("try_later", False)
    assert report["publish"] == "HSMUnavailableError"


class _TCPForwarder:
    """A TCP relay to PostgreSQL that can be cut, as a network outage between service and database."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the thread
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


POSTGRES_ONLY = pytest.mark.parametrize(
    "db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def forwarder(db_backend: str) -> Iterator[_TCPForwarder]:
    parts = urlsplit(db_backend)
    relay = _TCPForwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield relay
    relay.cut()


def _through(url: str, relay: _TCPForwarder) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{relay.port}"))


@POSTGRES_ONLY
def test_ocsp_answers_try_later_when_the_database_is_unreachable(
    initialized_services: Services,
    hierarchy: HierarchyResult,
    db_backend: str,
    forwarder: _TCPForwarder,
    hsm_data_dir: Path,
    make_settings: Callable[..., Settings],
) -> None:
    services = Services.open(make_settings(hsm_data_dir, database_url=_through(db_backend, forwarder)))
    try:
        issuing = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
        request = asn1_request([asn1_cert_id(issuing, 0x5EED)], raw_nonce_value=os.urandom(16))
        assert services.ocsp.answer(request).status == "successful"
        forwarder.cut()
        answer = services.ocsp.answer(request)
        assert (answer.status, response_status(answer.der)) == ("try_later", "try_later")
    finally:
        services.close()


@POSTGRES_ONLY
def test_crl_endpoint_answers_503_when_the_database_is_unreachable(
    initialized_services: Services,
    db_backend: str,
    forwarder: _TCPForwarder,
    hsm_data_dir: Path,
    make_settings: Callable[..., Settings],
) -> None:
    initialized_services.crls.publish(force=True)
    settings = make_settings(hsm_data_dir, database_url=_through(db_backend, forwarder), background_tasks=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/pki/crl/issuing-1.crl").status_code == 200
        forwarder.cut()
        reply = client.get("/pki/crl/issuing-1.crl")
        assert reply.status_code == 503
        assert reply.headers["content-type"] == "application/problem+json"
