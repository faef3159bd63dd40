"""Child process of test_concurrency: open a Runtime of its own and issue certificates from CSRs."""

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
        from govsign.pki.authority import IssuanceRequest
        from govsign.runtime import Runtime

        stage = "opening the runtime"
        with open_lock:
            runtime = Runtime.open(Settings(_env_file=None, **settings))  # type: ignore[call-arg]
        try:
            stage = "waiting for the other workers"
            barrier.wait(timeout=120)  # all workers issue at the same time
            stage = "issuing"
            serials = []
            for csr in csrs:
                request = IssuanceRequest(profile="device", csr=csr, actor=f"test:worker-{index}")
                issued = runtime.execute(
                    lambda ca, request=request: ca.issue(request),
                    action="certificate.issue",
                    actor=request.actor,
                    object_id="-",
                )
                serials.append(issued.record.serial_hex)
        finally:
            runtime.close()
        results.put((index, "ok", serials))
    except BaseException:
        elapsed = time.monotonic() - started
        results.put((index, "error", f"while {stage}, {elapsed:.1f} s after start:\n{traceback.format_exc()}"))
