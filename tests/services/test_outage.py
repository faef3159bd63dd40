"""Refusals of the public protocols during an HSM outage are audited without a flood: the first
refusal of an action is written at once, the ones after it within the same second are counted
into the next event of that action, so every refusal is in exactly one event."""

from __future__ import annotations

from typing import Any

from govsign.audit.events import AuditQuery
from govsign.services.bootstrap import Services
from govsign.services.outage import HSMOutage

ACTION = "tsa.timestamp"


def _refusal_events(services: Services) -> list[dict[str, Any]]:
    with services.database.read_only() as ports:
        return [e for e in ports.audit.search(AuditQuery(action=ACTION, limit=10_000)) if e["outcome"] == "failure"]


def test_a_burst_of_refusals_is_one_event_at_once_and_one_with_the_count(initialized_services: Services) -> None:
    services = initialized_services
    outage = HSMOutage(
        database=services.database, keystore=services.keystore, audit=services.audit, clock=services.clock
    )
    before = len(_refusal_events(services))
    for _ in range(50):
        outage.refused(ACTION, object_type="tsa", object_id="tsa", reason="systemFailure")
    first = _refusal_events(services)[before:]
    assert [e["details"]["refused"] for e in first] == [1], first
    outage.flush()  # within the second: nothing yet
    assert len(_refusal_events(services)) == before + 1
    outage.flush(force=True)
    events = _refusal_events(services)[before:]
    assert [e["details"]["refused"] for e in events] == [1, 49], events
    assert all(e["actor"] == "anonymous" and e["details"]["status"] == "systemFailure" for e in events), events
    outage.flush(force=True)  # nothing left to write
    assert len(_refusal_events(services)) == before + 2


def test_the_watch_of_an_available_token_writes_nothing(initialized_services: Services) -> None:
    services = initialized_services
    outage = HSMOutage(
        database=services.database, keystore=services.keystore, audit=services.audit, clock=services.clock
    )
    with services.database.read_only() as ports:
        before = ports.audit.count()
    assert outage.watch() and outage.watch()
    with services.database.read_only() as ports:
        assert ports.audit.count() == before
