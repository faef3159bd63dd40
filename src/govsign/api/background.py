"""The loop that runs the service's own maintenance inside ``serve`` (so no cron is needed):

* every second: CRLs of the CAs whose revocations changed (visible within seconds) or whose
  nextUpdate approaches; the audit checkpoints that are due and the audit head record;
* every 30 seconds: the OCSP responder rollover when due and the pre-produced OCSP responses that
  are missing or expiring.

Every worker process runs this loop; the database row locks make sure each CRL number and
each rollover happens once. Failures are logged and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from govsign.errors import GovsignError
from govsign.services.maintenance import Maintenance

log = logging.getLogger(__name__)

CRL_TICK_SECONDS = 1.0
OCSP_TICK_SECONDS = 30.0


async def run_maintenance(maintenance: Maintenance, stop: asyncio.Event | None = None) -> None:
    """Loop until ``stop`` is set; the work of a tick is finished before the loop returns, so the
    services are never closed under a running HSM or database call."""
    stop = stop or asyncio.Event()
    last_ocsp = 0.0
    while not stop.is_set():
        await _tick("CRL publication", maintenance.publish_crls)
        await _tick("audit checkpoints", maintenance.audit)
        if time.monotonic() - last_ocsp >= OCSP_TICK_SECONDS:
            last_ocsp = time.monotonic()
            await _tick("OCSP maintenance", maintenance.refresh_ocsp)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CRL_TICK_SECONDS)


async def _tick(what: str, work: Callable[[], object]) -> None:
    try:
        await asyncio.to_thread(work)
    except GovsignError as exc:
        log.warning("%s failed: %s", what, exc.message)
    except Exception:
        log.exception("%s failed", what)
