"""No orphans after a crash: a key generated for an issuance carries a pending marker until its
certificate commits; ``hsm reconcile`` (and the service at start-up) destroys, after a grace
period, the key of a marker no record names, audited, and never a key that has a record.

The fault campaign's kill -9 during issuance left HSM keys with no certificate that nothing
found or removed."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import signal
from collections.abc import Callable
from typing import Any

import pytest

from govsign.audit.events import AuditQuery
from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.issuance import IssuanceRequest
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from helpers.deployment import Deployment

OPERATOR = Requester.operator("operator:test")
SUBJECT = "CN=Nguyễn Văn Sự Cố {n},O=Bộ Tư pháp,C=VN"


def _markers(services: Services) -> dict[str, dt.datetime]:
    with services.database.read_only() as ports:
        return {marker.label: marker.created_at for marker in ports.pending_keys.all()}


def _token_labels(services: Services) -> set[str]:
    return {key.ref.label for key in services.keystore.list_private_keys()}


def _certificate_count(services: Services) -> int:
    with services.database.read_only() as ports:
        return ports.certificates.count()


def _child_settings(d: Deployment) -> dict[str, Any]:
    settings = d.settings
    assert settings.hsm_pin is not None
    return {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "public_base_url": settings.public_base_url,
        "hsm_pin": settings.hsm_pin.get_secret_value(),
        "hsm_pin_file": None,
        "pkcs11_module": None,
        "hsm_token_label": settings.hsm_token_label,
    }


def test_an_issuance_leaves_no_marker_whether_it_commits_or_fails(make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment()
    services = d.services
    issued = services.certificates.enrol(
        IssuanceRequest(profile="individual", subject=SUBJECT.format(n=1), key_algorithm=KeyAlgorithm.EC_P256),
        OPERATOR,
    )
    assert _markers(services) == {}
    assert issued.record.key is not None and issued.record.key.label.startswith("govsign-sub-")  # type: ignore[union-attr]
    keys = _token_labels(services)
    with pytest.raises(InvalidInputError):  # a refused issuance: its reserved marker is released
        services.certificates.enrol(
            IssuanceRequest(
                profile="individual",
                subject=SUBJECT.format(n=2),
                email="not an address",
                key_algorithm=KeyAlgorithm.EC_P256,
            ),
            OPERATOR,
        )
    assert _markers(services) == {}
    assert _token_labels(services) == keys


def test_kill_9_during_issuance_leaves_an_orphan_that_reconcile_destroys(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment()
    services = d.services
    certificates = _certificate_count(services)
    context = multiprocessing.get_context("spawn")
    reached, results = context.Event(), context.Queue()
    from .workers import issue_until_killed

    child = context.Process(target=issue_until_killed, args=(_child_settings(d), SUBJECT.format(n=3), reached, results))
    child.start()
    try:
        assert reached.wait(timeout=120), results.get(timeout=5) if not results.empty() else "the child never got there"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
    [label] = _markers(services)
    assert label in _token_labels(services), "the crash left the key in the HSM"
    assert _certificate_count(services) == certificates, "and no certificate"

    # within the grace period the key is listed, never destroyed (an issuance may be running)
    early = services.hsm.reconcile(grace=dt.timedelta(minutes=10))
    assert early.waiting == (label,) and early.destroyed == ()
    assert [key.label for key in early.unrecorded if key.pending_since is not None] == [label]
    assert label in _token_labels(services)

    recorded_before = _token_labels(services) - {label}
    d.clock.advance(dt.timedelta(minutes=11))
    report = services.hsm.reconcile(grace=dt.timedelta(minutes=10), actor="operator:test")
    assert report.destroyed == (label,)
    assert label not in _token_labels(services)
    assert _token_labels(services) == recorded_before, "no other key was touched"
    assert _markers(services) == {}
    [event] = services.audit.search(AuditQuery(action="hsm.key.destroy-orphan", limit=10))
    assert event["object_id"] == label and event["actor"] == "operator:test"
    assert services.hsm.reconcile(grace=dt.timedelta(0)).destroyed == (), "a second run has nothing to do"


def test_reconcile_never_touches_a_key_that_has_a_record(make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment()
    services = d.services
    issued = services.certificates.enrol(
        IssuanceRequest(profile="individual", subject=SUBJECT.format(n=4), key_algorithm=KeyAlgorithm.EC_P256),
        OPERATOR,
    )
    key = issued.record.key  # type: ignore[union-attr]
    assert key is not None
    service_keys = {d.hierarchy.tsa.key.label, d.hierarchy.ocsp_responder.key.label}  # type: ignore[union-attr]
    long_ago = d.clock.now() - dt.timedelta(days=1)
    with services.database.unit_of_work() as ports:  # markers as a bug or a restore might leave them
        for label in (key.label, *service_keys, d.hierarchy.issuing.key.label, "govsign-sub-never-generated"):
            ports.pending_keys.add(label, purpose="test", at=long_ago)
    before = _token_labels(services)
    report = services.hsm.reconcile(grace=dt.timedelta(0))
    assert report.destroyed == ()
    assert report.cleared == ("govsign-sub-never-generated",)
    assert _token_labels(services) == before
    assert services.keystore.find_key(label=key.label, algorithm=key.algorithm) == key
    assert _markers(services) == {}


def test_the_service_reconciles_at_start_up(make_deployment: Callable[..., Deployment]) -> None:
    from fastapi.testclient import TestClient

    from govsign.api.app import create_app

    d = make_deployment(pending_key_grace_seconds=0)
    services = d.services
    orphan = services.keystore.generate_key_pair(label="govsign-sub-crashed", algorithm=KeyAlgorithm.EC_P256)
    with services.database.unit_of_work() as ports:
        ports.pending_keys.add(orphan.label, purpose="certificate.issue", at=d.clock.now() - dt.timedelta(minutes=1))
    with TestClient(create_app(d.settings.model_copy(update={"background_tasks": False}))) as client:
        assert client.get("/healthz").status_code == 200
    assert orphan.label not in _token_labels(services)
    assert _markers(services) == {}


def test_every_key_an_operation_generates_takes_the_reserved_label_of_its_kind(
    make_deployment: Callable[..., Deployment],
) -> None:
    d = make_deployment(dual_control="", tsa_validity_days=30)
    services = d.services
    d.clock.advance(dt.timedelta(days=25))
    tsa = services.maintenance.rollover_tsa()
    reserved = r"govsign-{}-[0-9a-f]{{16}}"  # as UnitOfWork.run reserves them (the core's own carry a time)
    assert tsa is not None and tsa.key is not None and re.fullmatch(reserved.format("tsa"), tsa.key.label)
    replaced = services.hierarchy.replace_service_certificate("ocsp-responder", OPERATOR)
    key = replaced.record.key  # type: ignore[union-attr]
    assert key is not None and re.fullmatch(reserved.format("ocsp"), key.label)
    assert _markers(services) == {}, "every marker went with its certificate"
