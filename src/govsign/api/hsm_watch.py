"""The HSM watch of ``serve``: one per worker process (each has its own HSM session), beside the
maintenance loop of :mod:`govsign.api.background`.

A few times a second it calls :meth:`govsign.services.outage.HSMOutage.watch` in a worker
thread: the token is checked for real once a second while the keystore is up, and probed (at
most once a second) while it is down, so an outage ends by itself as soon as the token is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from govsign.services.outage import HSMOutage

log = logging.getLogger(__name__)

WATCH_TICK_SECONDS = 0.25


async def run_hsm_watch(outage: HSMOutage, stop: asyncio.Event | None = None) -> None:
    """Loop until ``stop`` is set (or the task is cancelled); a tick's failure is logged and the
    next tick tries again."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await asyncio.to_thread(outage.watch)
        except Exception:
            log.exception("HSM watch failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_TICK_SECONDS)
