"""The loop that runs the service's own maintenance inside ``serve`` (so no cron is needed).

Jobs are of two kinds:

* deployment-wide jobs run once per deployment, in the one process that holds their lease
  (``services/leases.py``), however many workers and nodes serve: every second the CRLs of the
  CAs whose revocations changed or whose nextUpdate approaches, and the audit checkpoints that
  are due (at every 100th event, and when an event waited five minutes) with the audit head
  record of the export; every 30 seconds the OCSP responder rollover when due and the
  pre-produced OCSP responses that are missing or expiring; every 10 seconds the audit events of
  the failed authentications of the minutes that are over;
* per-process jobs run in every worker (what only this process can do: carry its HSM operation
  counts into the shared Prometheus metrics, and the failed authentications it counted in
  memory during a flood into the database).

The lease is renewed by a task of its own, so a long job does not let it lapse; a holder that
dies is replaced once its lease expires. The database row locks stay as the second line: each
CRL number and each rollover happens once even if two processes ever ran a job together.
Failures are logged and retried on the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from govsign.errors import GovsignError
from govsign.services.bootstrap import Services
from govsign.services.leases import Leases
from govsign.services.metrics import sync_hsm_counts

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
CRL_EVERY_SECONDS = 1.0
AUDIT_EVERY_SECONDS = 1.0
OCSP_EVERY_SECONDS = 30.0
AUTH_FAILURE_AUDIT_EVERY_SECONDS = 10.0
METRICS_SYNC_EVERY_SECONDS = 1.0
AUTH_FAILURE_FLUSH_EVERY_SECONDS = 1.0
#: The lease of the deployment-wide maintenance jobs.
MAINTENANCE_LEASE = "maintenance"


@dataclass(frozen=True, kw_only=True)
class BackgroundJob:
    """A piece of periodic work."""

    name: str
    """What it does, for the log."""
    every: float
    """Seconds between two runs (from the start of one to the start of the next)."""
    work: Callable[[], object]
    """The work, run in a worker thread."""
    lease: str | None = MAINTENANCE_LEASE
    """The deployment-wide lease it runs under; None for work every process does."""


def maintenance_jobs(services: Services) -> list[BackgroundJob]:
    """The background jobs of ``serve``."""
    maintenance = services.maintenance
    return [
        BackgroundJob(name="CRL publication", every=CRL_EVERY_SECONDS, work=maintenance.publish_crls),
        BackgroundJob(name="audit checkpoints", every=AUDIT_EVERY_SECONDS, work=maintenance.audit),
        BackgroundJob(name="OCSP maintenance", every=OCSP_EVERY_SECONDS, work=maintenance.refresh_ocsp),
        BackgroundJob(
            name="failed-authentication audit",
            every=AUTH_FAILURE_AUDIT_EVERY_SECONDS,
            work=services.authentication.audit_failures,
        ),
        BackgroundJob(name="HSM metrics", every=METRICS_SYNC_EVERY_SECONDS, work=sync_hsm_counts, lease=None),
        BackgroundJob(
            name="failed-authentication counts",
            every=AUTH_FAILURE_FLUSH_EVERY_SECONDS,
            work=services.authentication.flush_failures,
            lease=None,
        ),
    ]


async def run_jobs(jobs: Sequence[BackgroundJob], leases: Leases, stop: asyncio.Event | None = None) -> None:
    """Run ``jobs`` until ``stop`` is set or the task is cancelled; the leases they need are
    renewed meanwhile and given back at the end. A job's run is finished before the loop
    returns, so the services are never closed under a running HSM or database call."""
    stop = stop or asyncio.Event()
    names = sorted({job.lease for job in jobs if job.lease is not None})
    finished = asyncio.Event()
    keeper = asyncio.create_task(_keep_leases(leases, names, stop, finished)) if names else None
    last_run: dict[str, float] = {}
    try:
        while not stop.is_set():
            for job in jobs:
                if stop.is_set():
                    break
                if time.monotonic() - last_run.get(job.name, float("-inf")) < job.every:
                    continue
                if job.lease is not None and not leases.held(job.lease):
                    continue
                last_run[job.name] = time.monotonic()
                await _run(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
    finally:
        # let a renewal under way finish (never cancel it: its thread would go on and could take
        # the lease again after it was given back), then give the leases back
        finished.set()
        if keeper is not None:
            await keeper
        for name in names:
            if leases.held(name):
                await asyncio.to_thread(leases.release, name)


async def _keep_leases(leases: Leases, names: Sequence[str], stop: asyncio.Event, finished: asyncio.Event) -> None:
    """Take or renew each lease every third of its lifetime (a lapsed holder is replaced within
    one lifetime plus one renewal), until the loop stops."""
    every = leases.ttl.total_seconds() / 3
    while not (stop.is_set() or finished.is_set()):
        for name in names:
            try:
                await asyncio.to_thread(leases.hold, name)
            except Exception:
                log.exception("renewing the lease %s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), every)


async def _run(job: BackgroundJob) -> None:
    try:
        await asyncio.to_thread(job.work)
    except GovsignError as exc:
        log.warning("%s failed: %s", job.name, exc.message)
    except Exception:
        log.exception("%s failed", job.name)
