"""Work the running service does by itself, so no cron is needed:

* every second: sign fresh CRLs for CAs whose revocations changed (visible within seconds)
  or whose nextUpdate approaches;
* every 30 seconds: re-sign pre-produced OCSP responses that are missing or expiring, roll
  the OCSP responder certificate over before it expires, and sign an audit checkpoint when
  enough events were added.

Every worker process runs this loop; the database row locks make sure each CRL number and
each rollover happens once. Failures are logged and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from govsign.errors import GovsignError
from govsign.platform import Platform
from govsign.runtime import Runtime

log = logging.getLogger(__name__)

CRL_TICK_SECONDS = 1.0
OCSP_TICK_SECONDS = 30.0


async def run_status_tasks(
    runtime: Runtime, platform: Platform | None = None, stop: asyncio.Event | None = None
) -> None:
    """Loop until ``stop`` is set; the work of a tick is finished before the loop returns, so the
    runtime is never closed under a running HSM or database call."""
    stop = stop or asyncio.Event()
    last_ocsp = 0.0
    while not stop.is_set():
        try:
            await asyncio.to_thread(runtime.publish_crls)
        except GovsignError as exc:
            log.warning("CRL publication failed: %s", exc.message)
        except Exception:
            log.exception("CRL publication failed")
        if time.monotonic() - last_ocsp >= OCSP_TICK_SECONDS:
            last_ocsp = time.monotonic()
            try:
                await asyncio.to_thread(runtime.rollover_ocsp_responder)
                await asyncio.to_thread(runtime.refresh_ocsp_responses)
                if platform is not None:
                    await asyncio.to_thread(platform.checkpoint)
            except GovsignError as exc:
                log.warning("OCSP maintenance failed: %s", exc.message)
            except Exception:
                log.exception("OCSP maintenance failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CRL_TICK_SECONDS)
