"""Checkpoints and the export (pure logic): where a checkpoint must be, what a checkpoint signs,
and reading an export."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from govsign.audit.checkpoints import (
    CHECKPOINT_CHAINED,
    CHECKPOINT_EVERY,
    CHECKPOINT_GRACE,
    CHECKPOINT_UNCHAINED,
    Checkpoint,
    HeadRecord,
    export_line,
    missing_checkpoint,
    parse_export,
)

START = dt.datetime(2026, 12, 4, 3, 0, 0, tzinfo=dt.UTC)


def events(count: int, step: dt.timedelta = dt.timedelta(seconds=1)) -> list[tuple[int, dt.datetime]]:
    return [(n, START + n * step) for n in range(1, count + 1)]


def test_the_hundredth_event_needs_a_checkpoint_once_later_events_came_well_after_it() -> None:
    quick = events(150)  # event 150 one minute after event 100: still within the grace
    assert missing_checkpoint(keyed_events=quick, covered_through=0, hundreds_covered=set()) is None
    later = [*quick, (151, START + dt.timedelta(seconds=100) + CHECKPOINT_GRACE + dt.timedelta(seconds=1))]
    found = missing_checkpoint(keyed_events=later, covered_through=0, hundreds_covered=set())
    assert found is not None and found[0] == 100 and "missing" in found[1]
    assert missing_checkpoint(keyed_events=later, covered_through=100, hundreds_covered={100}) is None


def test_an_uncovered_event_needs_a_checkpoint_once_events_came_five_minutes_after_it() -> None:
    written = [(1, START), (2, START + CHECKPOINT_EVERY + CHECKPOINT_GRACE)]
    assert missing_checkpoint(keyed_events=written, covered_through=0, hundreds_covered=set()) is None
    written.append((3, START + CHECKPOINT_EVERY + CHECKPOINT_GRACE + dt.timedelta(seconds=1)))
    assert missing_checkpoint(keyed_events=written, covered_through=0, hundreds_covered=set()) == (
        1,
        "The audit checkpoint covering event 1 is missing: events were written more than 5 minutes after it "
        "and none covers it; checkpoints were deleted.",
    )
    assert missing_checkpoint(keyed_events=written, covered_through=1, hundreds_covered=set()) is None


def test_a_log_that_simply_stopped_is_not_called_incomplete() -> None:
    """Judged by the events' own times: no later event, no missing checkpoint."""
    assert missing_checkpoint(keyed_events=events(99), covered_through=0, hundreds_covered=set()) is None


CHECKPOINT = Checkpoint(
    number=2,
    version=CHECKPOINT_CHAINED,
    last_event_id=200,
    last_hash="ab" * 32,
    last_mac="cd" * 32,
    previous_hash="ef" * 32,
    keyed_from=1,
    signed_at=START,
    key_label="govsign-audit-1",
    key_id_hex="00" * 16,
    signature=b"\x30\x06",
)


@pytest.mark.parametrize(
    "change",
    [{"number": 3}, {"last_event_id": 201}, {"last_hash": "00" * 32}, {"last_mac": None},
     {"previous_hash": "00" * 32}, {"keyed_from": 7}, {"signed_at": START + dt.timedelta(seconds=1)}],
)  # fmt: skip
def test_a_chained_checkpoint_signs_every_field(change: dict[str, object]) -> None:
    assert dataclasses.replace(CHECKPOINT, **change).message() != CHECKPOINT.message()  # type: ignore[arg-type]


def test_the_hash_of_a_checkpoint_covers_its_signature_and_an_unchained_one_signs_what_it_did() -> None:
    assert dataclasses.replace(CHECKPOINT, signature=b"\x30\x07").digest() != CHECKPOINT.digest()
    older = dataclasses.replace(CHECKPOINT, version=CHECKPOINT_UNCHAINED, number=1)
    assert older.message() == f"govsign-audit-checkpoint\n200\n{'ab' * 32}\n2026-12-04T03:00:00Z\n".encode()


def test_an_export_reads_back_and_a_bad_line_is_named() -> None:
    head = HeadRecord(sequence=245, event_hash="12" * 32, chain_mac=None, at=START)
    lines = [export_line(CHECKPOINT.export_record()), "", export_line(head.export_record())]
    contents = parse_export(lines)
    assert contents.checkpoints[2]["hash"] == CHECKPOINT.digest() and contents.heads == [head]
    with pytest.raises(ValueError, match="line 2 of the audit export"):
        parse_export([lines[0], '{"type": "other"}'])
