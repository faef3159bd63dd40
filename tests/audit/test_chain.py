"""The audit hash chain (pure logic): intact chains verify, every alteration is found and located."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable

import pytest

from govsign.audit.chain import GENESIS_HASH, ChainVerdict, LinkedEvent, StoredEvent, canonical_details, event_hash
from govsign.audit.chain import verify_chain as verify_stored

START = dt.datetime(2026, 1, 15, 3, 0, 0, tzinfo=dt.UTC)

#: A stored event and the hash stored beside it, as verify_chain reads them.
Row = tuple[LinkedEvent, str]

#: The fields of a stored event that a change to is found.
FIELDS = (
    "occurred_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "details_json",
    "previous_hash",
    "event_hash",
)


def verify_chain(rows: Iterable[Row]) -> ChainVerdict:
    """Version 1 (unkeyed) rows, as written before the keyed chain."""
    return verify_stored((StoredEvent(event=event, event_hash=digest, chain_mac=None) for event, digest in rows), None)


def build_chain(count: int = 5) -> list[Row]:
    rows: list[Row] = []
    previous = GENESIS_HASH
    for sequence in range(1, count + 1):
        event = LinkedEvent(
            sequence=sequence,
            occurred_at=START + dt.timedelta(minutes=sequence),
            actor="operator:lan",
            action="certificate.issue",
            object_type="certificate",
            object_id=f"{sequence:032x}",
            outcome="success",
            details_json=canonical_details({"profile": "individual", "subject": f"CN=Nguyễn Văn {sequence},C=VN"}),
            previous_hash=previous,
        )
        digest = event_hash(event)
        rows.append((event, digest))
        previous = digest
    return rows


def _with(row: Row, field: str, value: object) -> Row:
    event, digest = row
    if field == "event_hash":
        return event, str(value)
    return dataclasses.replace(event, **{field: value}), digest


def test_intact_chain_verifies() -> None:
    verdict = verify_chain(build_chain())
    assert verdict.intact
    assert verdict.events_checked == 5
    assert verdict.first_broken_sequence is None
    assert verdict.problem is None


def test_empty_chain_verifies() -> None:
    assert verify_chain([]).intact


def test_first_event_links_to_genesis_and_each_to_the_one_before() -> None:
    rows = build_chain()
    assert rows[0][0].previous_hash == GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after[0].previous_hash == before[1]


NEW_VALUES: dict[str, object] = {
    "occurred_at": START + dt.timedelta(days=1),
    "actor": "operator:mallory",
    "action": "certificate.revoke",
    "object_type": "ca",
    "object_id": "0" * 32,
    "outcome": "failure",
    "details_json": canonical_details({"profile": "device"}),
    "previous_hash": "f" * 64,
    "event_hash": "e" * 64,
}


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("sequence", [1, 3, 5])
def test_changing_any_field_is_found_at_that_event(field: str, sequence: int) -> None:
    rows = build_chain()
    rows[sequence - 1] = _with(rows[sequence - 1], field, NEW_VALUES[field])
    verdict = verify_chain(rows)
    assert not verdict.intact
    assert verdict.first_broken_sequence == sequence
    assert str(sequence) in (verdict.problem or "")


def test_changing_one_character_of_the_details_is_found() -> None:
    rows = build_chain()
    rows[1] = _with(rows[1], "details_json", rows[1][0].details_json.replace("Văn", "Vân"))
    verdict = verify_chain(rows)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 2)
    assert "altered" in (verdict.problem or "")


def test_rehashing_an_altered_event_breaks_the_link_of_the_next() -> None:
    rows = build_chain()
    forged = dataclasses.replace(rows[2][0], details_json=canonical_details({"profile": "forged"}))
    rows[2] = (forged, event_hash(forged))
    verdict = verify_chain(rows)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 4)
    assert "does not link" in (verdict.problem or "")


@pytest.mark.parametrize("index", [0, 2, 4])
def test_deleting_an_event_is_found(index: int) -> None:
    rows = build_chain()
    del rows[index]
    verdict = verify_chain(rows)
    if index == 4:
        # Losing the newest event leaves a valid prefix; the stored chain head catches that
        # (tests/storage/test_repositories.py).
        assert verdict.intact and verdict.events_checked == 4
        return
    assert not verdict.intact
    assert verdict.first_broken_sequence == index + 1, "the deleted event itself is named"
    assert "missing" in (verdict.problem or "")


def test_reordering_events_is_found() -> None:
    rows = build_chain()
    rows[1], rows[2] = rows[2], rows[1]
    verdict = verify_chain(rows)
    assert not verdict.intact
    assert verdict.first_broken_sequence == 2, "the first position that holds the wrong event"
    assert "2" in (verdict.problem or "")


def test_renumbering_events_is_found() -> None:
    rows = build_chain()
    rows[2] = _with(rows[2], "sequence", 7)
    verdict = verify_chain(rows)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 3), "event 3 is gone from its place"


def test_hash_does_not_depend_on_the_time_zone_of_the_same_instant() -> None:
    event = build_chain(1)[0][0]
    vietnam = dt.timezone(dt.timedelta(hours=7))
    in_vietnam = dataclasses.replace(event, occurred_at=event.occurred_at.astimezone(vietnam))
    assert in_vietnam.occurred_at.utcoffset() == dt.timedelta(hours=7)
    assert event_hash(event) == event_hash(in_vietnam)


def test_canonical_details_are_sorted_compact_utf8() -> None:
    assert canonical_details({"b": 1, "a": "Yến"}) == '{"a":"Yến","b":1}'
    assert canonical_details(None) == "{}"


@pytest.mark.parametrize(
    "details",
    [
        {"pin": "1234"},
        {"PIN": "1234"},
        {"so_pin": "1"},
        {"user_pin": "1"},
        {"password": "x"},
        {"secret": "x"},
        {"private_key": "x"},
        {"document": "x"},
        {"outer": {"inner": {"Password": "x"}}},
        {"items": [{"ok": 1}, {"secret": "x"}]},
    ],
)
def test_secrets_in_details_are_refused(details: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must not carry"):
        canonical_details(details)
