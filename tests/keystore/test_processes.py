"""Several processes log in to one SoftHSM2 token at once (``serve --workers N`` starting up)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from ._login_worker import open_and_close

PROCESSES = 6
ROUNDS = 4


def test_processes_logging_in_at_once_all_succeed(hsm_data_dir: Path, softhsm2_module: str, hsm_pin: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    conf = os.environ["SOFTHSM2_CONF"]
    processes = [
        context.Process(
            target=open_and_close, args=(conf, softhsm2_module, "govsign", hsm_pin, ROUNDS, barrier, results)
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [outcome for _ in processes for outcome in results.get(timeout=120)]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    failures = [outcome for outcome in outcomes if outcome != "ok"]
    assert failures == [], f"{len(failures)} of {len(outcomes)} logins failed: {failures[0]}"
