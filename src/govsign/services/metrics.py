"""The Prometheus registry and the counters that the services and the HTTP layer share."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from govsign.keystore.pkcs11 import ERROR_COUNTS, OPERATION_COUNTS

REGISTRY = CollectorRegistry(auto_describe=True)

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


class _HSMCollector(Collector):
    def collect(self) -> Any:
        operations = CounterMetricFamily("govsign_hsm_operations", "PKCS#11 operations by kind.", labels=["operation"])
        for name, count in sorted(OPERATION_COUNTS.items()):
            operations.add_metric([name], count)
        yield operations
        errors = CounterMetricFamily(
            "govsign_hsm_errors", "PKCS#11 operations that failed, by kind.", labels=["operation"]
        )
        for name, count in sorted(ERROR_COUNTS.items()):
            errors.add_metric([name], count)
        yield errors


REGISTRY.register(_HSMCollector())
