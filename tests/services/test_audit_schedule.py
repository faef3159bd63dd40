"""When the service makes audit checkpoints and head records by itself (SQLite and PostgreSQL, the
real token): the background loop's audit work makes one at every 100th event and one when an
event waited five minutes, time-stamped by our TSA (or recorded without a time-stamp when the
TSA cannot answer); head records go to the export while events arrive and when the process
stops."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from govsign.api.background import maintenance_jobs, run_jobs
from govsign.config import Settings
from govsign.errors import ConfigurationError
from govsign.services.audit_checkpoints import HEAD_EXPORT_GAP_SECONDS
from govsign.services.bootstrap import Services
from helpers.deployment import Deployment


def record(services: Services, count: int) -> None:
    for n in range(count):
        with services.database.unit_of_work() as ports:
            services.audit.record(
                ports, "test.event", actor="operator:t", object_type="x", object_id=str(n), details={}
            )


def head(services: Services) -> int:
    with services.database.read_only() as ports:
        return ports.checkpoints.head()[0]


def exported(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_checkpoints_at_every_hundredth_event_and_after_five_minutes(
    make_deployment: Callable[..., Deployment], tmp_path: Path
) -> None:
    export = tmp_path / "audit.jsonl"
    d = make_deployment(audit_export=export)
    services = d.services
    record(services, 100 - head(services) + 20)
    services.maintenance.audit()
    with services.database.read_only() as ports:
        made = ports.checkpoints.all()
    assert [c.last_event_id for c in made] == [100], "the one at event 100; the rest are not due"
    assert made[0].timestamp_token is not None, made[0].timestamp_problem
    d.clock.advance(dt.timedelta(minutes=5))
    services.maintenance.audit()
    with services.database.read_only() as ports:
        made = ports.checkpoints.all()
    assert [c.last_event_id for c in made] == [100, head(services)]
    records = exported(export)
    assert [r["number"] for r in records if r["type"] == "checkpoint"] == [1, 2]
    assert [r["sequence"] for r in records if r["type"] == "head"] == [head(services)]
    assert services.audit_checkpoints.verify().intact


def test_a_checkpoint_is_recorded_without_a_time_stamp_when_the_tsa_cannot_answer(
    make_deployment: Callable[..., Deployment], tmp_path: Path
) -> None:
    d = make_deployment(audit_export=tmp_path / "audit.jsonl")
    record(d.services, 1)
    d.clock.advance(dt.timedelta(days=4000))  # past the TSA certificate: the TSA refuses
    before = head(d.services)
    assert d.services.audit_checkpoints.checkpoint(force=True) == before  # (the refusal is audited after it)
    with d.services.database.read_only() as ports:
        (checkpoint,) = ports.checkpoints.all()
    assert checkpoint.timestamp_token is None and "TSA" in str(checkpoint.timestamp_problem)
    verdict = d.services.audit_checkpoints.verify()
    assert verdict.intact and any("no time-stamp" in note for note in verdict.notes), verdict


def test_the_background_loop_exports_head_records_while_events_arrive_and_at_shutdown(
    make_deployment: Callable[..., Deployment], tmp_path: Path
) -> None:
    export = tmp_path / "audit.jsonl"
    d = make_deployment(audit_export=export)

    async def serve_a_while() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_jobs(maintenance_jobs(d.services), d.services.leases, stop))
        await asyncio.to_thread(record, d.services, 3)
        await asyncio.sleep(1.5)  # the loop looks every second
        stop.set()
        await loop

    asyncio.run(serve_a_while())
    heads = [r["sequence"] for r in exported(export) if r["type"] == "head"]
    assert heads and heads[-1] == head(d.services), heads
    record(d.services, 1)
    # within HEAD_EXPORT_GAP_SECONDS of the last record the loop waits (a record at most every
    # ~6 s while events arrive, so always one within 10 s)
    assert d.services.audit_checkpoints.export_head() is None
    assert HEAD_EXPORT_GAP_SECONDS + 1 < 10
    record(d.services, 2)
    d.services.audit_checkpoints.at_close()  # what Services.close does when a worker stops
    records = exported(export)
    assert records[-1] == {**records[-1], "type": "head", "sequence": heads[-1] + 3}
    assert [r for r in records if r["type"] == "checkpoint"], "the stopping process covers what it wrote"


def test_an_export_setting_naming_a_missing_directory_stops_start_up(
    hsm_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = hsm_settings(audit_export=tmp_path / "no-such-dir" / "audit.jsonl")
    with pytest.raises(ConfigurationError, match=r"GOVSIGN_AUDIT_EXPORT names .* does not exist"):
        Services.open(settings, initialize=True)
