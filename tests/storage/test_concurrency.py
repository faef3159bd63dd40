"""Four processes issue 200 certificates at once on one PostgreSQL database and one token."""

from __future__ import annotations

import multiprocessing
import queue
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from govsign.services.bootstrap import Services
from govsign.storage.models import CertificateRow
from helpers.deployment import Deployment

from ._concurrency_worker import issue_batch

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 4
PER_WORKER = 50
TIMEOUT_SECONDS = 240.0


def _csrs(count: int) -> list[bytes]:
    csrs = []
    for index in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sở Thông tin và Truyền thông"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Thiết bị ký số {index:03d}"),
            ]
        )
        request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        csrs.append(request.public_bytes(serialization.Encoding.PEM))
    return csrs


def _counts(services: Services) -> tuple[int, int]:
    with services.database.unit_of_work() as ports:
        return ports.certificates.count(), ports.audit.count()


def _run_workers(settings: dict[str, Any], batches: list[list[bytes]]) -> dict[int, list[str]]:
    """Start one spawned process per batch; return serials by worker, or fail naming what went wrong."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    barrier = context.Barrier(len(batches))
    open_lock = context.Lock()
    processes = [
        context.Process(
            target=issue_batch,
            args=(index, settings, batch, open_lock, barrier, results),
            name=f"govsign-worker-{index}",
        )
        for index, batch in enumerate(batches)
    ]
    for process in processes:
        process.start()
    serials: dict[int, list[str]] = {}
    failures: list[str] = []
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while len(serials) + len(failures) < len(processes):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"timed out after {TIMEOUT_SECONDS:.0f} s")
                break
            try:
                index, outcome, payload = results.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:  # a crash (e.g. a segfault in the PKCS#11 module) reports nothing
                    failures.extend(f"{p.name} died with exit code {p.exitcode}" for p in dead)
                    break
                continue
            if outcome == "ok":
                serials[index] = payload
            else:
                failures.append(f"worker {index} failed:\n{payload}")
                barrier.abort()  # release the siblings waiting for this worker at once
        for process in processes:
            process.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        results.close()
    if failures:
        pytest.fail("\n".join(failures))
    return serials


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_concurrent_issuance_from_four_processes(
    initialized_services: Services, hsm_data_dir: Path, hsm_pin: str, initialized: Deployment
) -> None:
    settings = initialized.settings
    child_settings = {
        "data_dir": str(hsm_data_dir),
        "database_url": settings.database_url,
        "public_base_url": settings.public_base_url,
        "hsm_pin": hsm_pin,
        "pkcs11_module": None,
        "hsm_token_label": settings.hsm_token_label,
        "hsm_pin_file": None,
    }
    csrs = _csrs(WORKERS * PER_WORKER)
    batches = [csrs[i * PER_WORKER : (i + 1) * PER_WORKER] for i in range(WORKERS)]
    certificates_before, audit_before = _counts(initialized_services)

    by_worker = _run_workers(child_settings, batches)

    serials = [serial for worker in sorted(by_worker) for serial in by_worker[worker]]
    assert len(serials) == WORKERS * PER_WORKER
    assert len(set(serials)) == WORKERS * PER_WORKER
    certificates_after, audit_after = _counts(initialized_services)
    assert certificates_after - certificates_before == WORKERS * PER_WORKER
    assert audit_after - audit_before == WORKERS * PER_WORKER
    with initialized_services.database.unit_of_work() as ports:
        stored = ports.session.execute(
            select(CertificateRow.serial_hex, CertificateRow.profile, CertificateRow.issuer_id).where(
                CertificateRow.serial_hex.in_(serials)
            )
        ).all()
        distinct = ports.session.scalar(
            select(func.count(func.distinct(CertificateRow.serial_hex))).where(CertificateRow.serial_hex.in_(serials))
        )
    verdict = initialized_services.audit_checkpoints.verify_events()
    assert len(stored) == WORKERS * PER_WORKER and distinct == WORKERS * PER_WORKER
    assert {(profile, issuer) for _, profile, issuer in stored} == {("device", "issuing-1")}
    assert verdict.intact, verdict.problem
