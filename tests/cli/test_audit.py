"""`govsign audit verify`: intact logs pass; a changed or deleted audit row is found and named.

Tampering happens on copies of a separate small SQLite deployment, never on the shared ones."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Deployment, Result, assert_ok, assert_one_sentence_error

_copies = itertools.count(1)


@dataclass(frozen=True)
class Verdict:
    """``audit verify`` and ``audit verify --json`` on a tampered copy of the small deployment."""

    plain: Result
    report: dict[str, Any]
    event: int


def _copy(small: Deployment, workspace: Path) -> Path:
    copy = workspace / f"audit-copy-{next(_copies)}"
    with small.lock:
        shutil.copytree(small.data_dir, copy)
    return copy


def _tamper(data_dir: Path, sql: str) -> None:
    connection = sqlite3.connect(data_dir / "govsign.sqlite3")
    try:
        with connection:
            changed = connection.execute(sql).rowcount
        assert changed == 1, f"{sql} changed {changed} rows"
    finally:
        connection.close()


def _last_event_id(data_dir: Path) -> int:
    connection = sqlite3.connect(data_dir / "govsign.sqlite3")
    try:
        return int(connection.execute("SELECT max(id) FROM audit_events").fetchone()[0])
    finally:
        connection.close()


def _verify(small: Deployment, data_dir: Path, *args: str) -> Result:
    return small.run("audit", "verify", *args, GOVSIGN_DATA_DIR=str(data_dir))


def _verdict(small: Deployment, data_dir: Path, event: int) -> Verdict:
    report = _verify(small, data_dir, "--json")
    return Verdict(plain=_verify(small, data_dir), report=json.loads(report.stdout), event=event)


@pytest.fixture(scope="module")
def altered(small_deployment: Deployment, cli_workspace: Path) -> Verdict:
    copy = _copy(small_deployment, cli_workspace)
    _tamper(copy, "UPDATE audit_events SET actor='x' WHERE id=2")
    return _verdict(small_deployment, copy, 2)


@pytest.fixture(scope="module")
def truncated(small_deployment: Deployment, cli_workspace: Path) -> Verdict:
    copy = _copy(small_deployment, cli_workspace)
    last = _last_event_id(copy)
    _tamper(copy, f"DELETE FROM audit_events WHERE id={last}")
    return _verdict(small_deployment, copy, last)


def test_audit_verify_passes_on_the_shared_deployment_after_a_refusal(deployment: Deployment) -> None:
    assert deployment.run("cert", "revoke", "0badc0ffee", "--reason", "superseded").returncode != 0  # audited
    verdict = deployment.ok("audit", "verify")
    assert verdict["intact"] is True, verdict
    assert verdict["events_checked"] >= 5  # root, issuing, OCSP, TSA, the refusal
    assert verdict["first_broken_event"] is None


def test_audit_verify_exits_0_on_an_untouched_log(small_deployment: Deployment, cli_workspace: Path) -> None:
    result = _verify(small_deployment, _copy(small_deployment, cli_workspace))
    assert_ok(result)
    assert "intact" in result.stdout
    assert result.stderr.strip() == ""


def _assert_names(verdict: Verdict, *words: str) -> None:
    message = verdict.plain.stderr.strip()
    assert "Traceback" not in verdict.plain.stderr and len(message.splitlines()) == 1, verdict.plain.describe()
    for word in words:
        assert word in message.lower(), message


def test_audit_verify_names_an_altered_event(altered: Verdict) -> None:
    assert altered.report["intact"] is False
    assert altered.report["first_broken_event"] == 2
    _assert_names(altered, "event 2", "altered")


def test_audit_verify_exits_non_zero_on_an_altered_event(altered: Verdict) -> None:
    assert_one_sentence_error(altered.plain, "event 2")


def test_audit_verify_detects_a_deleted_last_event(truncated: Verdict) -> None:
    assert truncated.report["intact"] is False, truncated.report
    _assert_names(truncated, str(truncated.event), "delet")


def test_audit_verify_exits_non_zero_on_a_deleted_last_event(truncated: Verdict) -> None:
    assert_one_sentence_error(truncated.plain, str(truncated.event))


def test_audit_verify_on_a_data_dir_without_schema_says_to_run_init(
    small_deployment: Deployment, cli_workspace: Path
) -> None:
    empty = cli_workspace / "audit-empty-data-dir"
    assert_one_sentence_error(_verify(small_deployment, empty), "govsign init")
