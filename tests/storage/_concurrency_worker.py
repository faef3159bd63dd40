"""Child process of test_concurrency: open a Services of its own and issue certificates from CSRs."""

from __future__ import annotations

import time
import traceback
from typing import Any


def issue_batch(
    index: int, settings: dict[str, Any], csrs: list[bytes], open_lock: Any, barrier: Any, results: Any
) -> None:
    """Issue one certificate per CSR; put (index, "ok", serials) or (index, "error", report).

    The workers log in one after the other (``open_lock``): SoftHSM2 fails concurrent C_Login
    from several processes at random (tests/keystore/test_processes.py); then all issue at once.
    """
    started = time.monotonic()
    stage = "importing govsign"
    try:
        from govsign.config import Settings
        from govsign.pki.issuance import IssuanceRequest
        from govsign.services.authorization import Requester
        from govsign.services.bootstrap import Services

        stage = "opening the services"
        with open_lock:
            services = Services.open(Settings(_env_file=None, **settings))  # type: ignore[call-arg]
        try:
            stage = "waiting for the other workers"
            barrier.wait(timeout=120)  # all workers issue at the same time
            stage = "issuing"
            serials = []
            for csr in csrs:
                request = IssuanceRequest(profile="device", csr=csr)
                worker = Requester.operator(f"test:worker-{index}")
                issued = services.uow.run(
                    lambda work, request=request, worker=worker: work.issuance.issue(request, actor=worker.actor),
                    action="certificate.issue",
                    requester=worker,
                    object_id="-",
                )
                serials.append(issued.record.serial_hex)
        finally:
            services.close()
        results.put((index, "ok", serials))
    except BaseException:
        elapsed = time.monotonic() - started
        results.put((index, "error", f"while {stage}, {elapsed:.1f} s after start:\n{traceback.format_exc()}"))
