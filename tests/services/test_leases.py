"""Deployment-wide leases: one holder at a time, renewal, take-over after expiry, give-back, a race
for an expired lease won by exactly one process, and the background loop running a job in one of
two "processes" (two loops over one database) only, handed over when its holder stops."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator

import pytest

from govsign.api.background import BackgroundJob, run_jobs
from govsign.clock import FixedClock, SystemClock
from govsign.services.leases import Leases
from govsign.storage.engine import Database
from govsign.storage.migrate import upgrade_to_head

TTL = dt.timedelta(seconds=6)


@pytest.fixture
def database(fresh_database_url: str) -> Iterator[Database]:
    database = Database(fresh_database_url)
    upgrade_to_head(database.engine)
    yield database
    database.dispose()


def test_one_holder_at_a_time_renewed_and_taken_over_after_expiry(database: Database) -> None:
    clock = FixedClock(SystemClock().now())
    first = Leases(database=database, clock=clock, ttl=TTL, holder="node-a:1")
    second = Leases(database=database, clock=clock, ttl=TTL, holder="node-b:1")
    assert first.hold("jobs") and first.held("jobs")
    assert not second.hold("jobs") and not second.held("jobs")
    taken_at = first.current("jobs")
    assert taken_at is not None and taken_at.holder == "node-a:1"
    clock.advance(dt.timedelta(seconds=4))
    assert first.hold("jobs"), "the holder renews"
    renewed = first.current("jobs")
    assert renewed is not None and renewed.acquired_at == taken_at.acquired_at
    assert renewed.expires_at == clock.now() + TTL
    clock.advance(dt.timedelta(seconds=5))
    assert not second.hold("jobs"), "a renewed lease has not expired"
    clock.advance(dt.timedelta(seconds=2))  # the holder stopped renewing (died)
    assert second.hold("jobs")
    assert not first.hold("jobs") and not first.held("jobs"), "the old holder knows it lost it"
    lease = second.current("jobs")
    assert lease is not None and lease.holder == "node-b:1" and lease.acquired_at == clock.now()
    # another lease name is independent
    assert first.hold("other")


def test_a_lease_given_back_is_taken_at_once(database: Database) -> None:
    clock = FixedClock(SystemClock().now())
    first = Leases(database=database, clock=clock, ttl=TTL)
    second = Leases(database=database, clock=clock, ttl=TTL)
    assert first.holder != second.holder
    assert first.hold("jobs")
    second.release("jobs")  # not its lease: nothing happens
    assert not second.hold("jobs")
    first.release("jobs")
    assert not first.held("jobs")
    assert second.hold("jobs")


def test_of_processes_racing_for_an_expired_lease_exactly_one_wins(database: Database) -> None:
    clock = FixedClock(SystemClock().now())
    Leases(database=database, clock=clock, ttl=TTL, holder="dead").hold("jobs")
    clock.advance(TTL)
    contenders = [Leases(database=database, clock=clock, ttl=TTL, holder=f"node-{i}") for i in range(8)]
    start = threading.Barrier(len(contenders))
    won: list[str] = []

    def contend(leases: Leases) -> None:
        start.wait()
        if leases.hold("jobs"):
            won.append(leases.holder)

    threads = [threading.Thread(target=contend, args=(leases,)) for leases in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1, won
    lease = contenders[0].current("jobs")
    assert lease is not None and lease.holder == won[0]


def test_a_deployment_wide_job_runs_in_one_process_and_moves_when_it_stops(database: Database) -> None:
    clock = SystemClock()
    runs: dict[str, int] = {"a": 0, "b": 0}
    local: dict[str, int] = {"a": 0, "b": 0}

    def jobs(name: str) -> list[BackgroundJob]:
        return [
            BackgroundJob(name="count", every=0.1, work=lambda: runs.__setitem__(name, runs[name] + 1)),
            BackgroundJob(name="local", every=0.1, work=lambda: local.__setitem__(name, local[name] + 1), lease=None),
        ]

    async def scenario() -> None:
        leases_a = Leases(database=database, clock=clock, ttl=dt.timedelta(seconds=1.5), holder="a")
        leases_b = Leases(database=database, clock=clock, ttl=dt.timedelta(seconds=1.5), holder="b")
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        loop_a = asyncio.create_task(run_jobs(jobs("a"), leases_a, stop_a))
        await asyncio.sleep(0.5)  # a takes the lease first
        loop_b = asyncio.create_task(run_jobs(jobs("b"), leases_b, stop_b))
        await asyncio.sleep(1.5)
        assert runs["a"] > 3 and runs["b"] == 0, runs
        assert local["a"] > 3 and local["b"] > 3, local  # per-process jobs run everywhere
        stop_a.set()
        await loop_a  # gives the lease back
        lease = leases_b.current("maintenance")
        assert lease is None or lease.holder == "b", "a gave its lease back"
        before = runs["a"]
        await asyncio.sleep(1.5)  # b renews within a third of the lifetime
        assert runs["a"] == before and runs["b"] > 3, runs
        stop_b.set()
        await loop_b

    asyncio.run(scenario())
