"""The Prometheus registry and the counters that the services and the HTTP layer share.

With ``--workers N`` the service runs in prometheus_client's multiprocess mode: ``govsign serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` (a directory of its own under the data dir, emptied at start)
before the worker processes start, each worker writes its samples to files there, and
``/metrics`` in any worker sums the files of all of them, so every scrape sees one consistent
view. A single process (``--workers 1``, the tests) keeps its metrics in memory.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess, values

from govsign.keystore.pkcs11 import ERROR_COUNTS, OPERATION_COUNTS

REGISTRY = CollectorRegistry(auto_describe=True)
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

CA_OPERATIONS = Counter(
    "govsign_ca_operations_total",
    "CA operations (issuance, revocation, hold, release, renewal...) by action and outcome.",
    ["action", "outcome"],
    registry=REGISTRY,
)

TIMESTAMPS = Counter(
    "govsign_timestamps_total",
    "RFC 3161 time-stamp replies by outcome (granted, or the PKIFailureInfo of a rejection).",
    ["outcome"],
    registry=REGISTRY,
)

HSM_OPERATIONS = Counter("govsign_hsm_operations", "PKCS#11 operations by kind.", ["operation"], registry=REGISTRY)
HSM_ERRORS = Counter("govsign_hsm_errors", "PKCS#11 operations that failed, by kind.", ["operation"], registry=REGISTRY)

_synced: dict[tuple[str, str], int] = {}
_sync_lock = threading.Lock()


def sync_hsm_counts() -> None:
    """Carry the keystore's operation counts (plain integers: the keystore knows nothing of
    Prometheus) into the HSM counters, which in multiprocess mode live in this process's files."""
    with _sync_lock:
        for kind, counts, counter in (("ops", OPERATION_COUNTS, HSM_OPERATIONS), ("errors", ERROR_COUNTS, HSM_ERRORS)):
            for operation, count in list(counts.items()):
                done = _synced.get((kind, operation), 0)
                if count > done:
                    counter.labels(operation).inc(count - done)
                _synced[(kind, operation)] = count


def multiprocess_mode() -> bool:
    """Whether this process's metrics are written to the multiprocess directory (decided by
    prometheus_client when it was first imported)."""
    return MULTIPROCESS_DIR_VARIABLE in os.environ and values.ValueClass is not values.MutexValue


def exposition() -> bytes:
    """The metrics in Prometheus text format: of every worker process in multiprocess mode,
    else of this process."""
    sync_hsm_counts()
    if not multiprocess_mode():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_stopped() -> None:
    """At a worker's clean exit: flush its HSM counts and let the live gauges forget it."""
    sync_hsm_counts()
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
