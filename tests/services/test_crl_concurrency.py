"""CRL numbers under concurrency on PostgreSQL: two worker processes revoking and publishing at
once, and two transactions creating a CA's CRL numbering row at once."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

import pytest
from cryptography import x509
from sqlalchemy import select

from govsign.storage.models import CRLRow
from helpers.ca import make_csr
from helpers.deployment import Deployment

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
ROUNDS = 4


@POSTGRES_ONLY
def test_crl_numbers_never_repeat_across_two_processes_revoking_and_publishing(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    d.services.crls.publish(force=True)
    settings = d.settings
    assert settings.hsm_pin is not None
    values = {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "public_base_url": settings.public_base_url,
        "hsm_pin": settings.hsm_pin.get_secret_value(),
        "hsm_pin_file": None,
        "pkcs11_module": None,
        "hsm_token_label": settings.hsm_token_label,
    }
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    from .workers import revoke_and_publish

    children = [
        context.Process(
            target=revoke_and_publish,
            args=(values, [make_csr(f"Tiến trình {n}-{i}") for i in range(ROUNDS)], barrier, results),
        )
        for n in range(2)
    ]
    for child in children:
        child.start()
    reports = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    errors = [r["error"] for r in reports if r["error"]]
    assert not errors, errors[0]
    published = [entry for report in reports for entry in report["published"]]
    assert len(published) == 2 * ROUNDS * 2  # two processes, ROUNDS rounds, two CAs

    with d.services.database.read_only() as ports:
        rows = list(
            ports.session.execute(
                select(
                    CRLRow.ca_id,
                    CRLRow.crl_number,
                    CRLRow.kind,
                    CRLRow.base_crl_number,
                    CRLRow.entry_count,
                    CRLRow.crl_der,
                ).order_by(CRLRow.ca_id, CRLRow.crl_number)
            )
        )
    for ca_id in ("root-1", "issuing-1"):
        mine = [row for row in rows if row.ca_id == ca_id]
        numbers = [row.crl_number for row in mine]
        assert len(numbers) == len(set(numbers)) == 2 + 2 * ROUNDS * 2
        assert numbers == list(range(1, len(numbers) + 1)), "gap-free, each number once"
        reported = sorted(n for ca, full, delta in published if ca == ca_id for n in (full, delta))
        assert reported == numbers[2:], "every number a process published is stored once"
        for row in mine:
            crl = x509.load_der_x509_crl(row.crl_der)
            assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == row.crl_number
            if row.kind == "delta":
                indicator = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
                assert indicator.crl_number == row.base_crl_number
        fulls = [row for row in mine if row.kind == "full"]
        assert [r.crl_number for r in fulls] == [n for n in numbers if n % 2 == 1]
        # Later numbers never list fewer revocations: the publications were serialized.
        if ca_id == "issuing-1":
            counts = [row.entry_count for row in fulls]
            assert counts == sorted(counts) and counts[-1] >= 2 * ROUNDS


@POSTGRES_ONLY
def test_two_transactions_creating_a_cas_crl_state_at_once_both_succeed(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    database = d.services.database
    outcome: dict[str, object] = {}
    first_holds_lock = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with database.unit_of_work() as ports:
            ports.crls.lock_crl_state("issuing-1")
            first_holds_lock.set()
            release_first.wait(timeout=30)

    def second() -> None:
        try:
            with database.unit_of_work() as ports:
                state = ports.crls.lock_crl_state("issuing-1")
                outcome["next_number"] = state.next_crl_number
        except Exception as exc:
            outcome["error"] = repr(exc)

    one = threading.Thread(target=first)
    one.start()
    assert first_holds_lock.wait(timeout=30)
    two = threading.Thread(target=second)
    two.start()
    two.join(timeout=1.0)  # it waits for the first transaction's row (PostgreSQL unique check)
    release_first.set()
    one.join(timeout=30)
    two.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["next_number"] == 1
