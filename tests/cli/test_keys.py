"""Every private key stays in the HSM: checked with pkcs11-tool, and `govsign hsm info` agrees."""

from __future__ import annotations

from helpers.cli import SOFTHSM_MODULE, TOKEN_LABEL, Deployment

REQUIRED_ACCESS = {"sensitive", "always sensitive", "never extractable", "local"}


def _access(block: dict[str, str]) -> set[str]:
    return {flag.strip() for flag in block.get("Access", "").split(",") if flag.strip()}


def test_every_private_key_is_sensitive_never_extractable_and_generated_on_the_token(deployment: Deployment) -> None:
    issued = deployment.issue(
        "--profile", "individual", "--subject", "CN=Khóa trong HSM,C=VN", "--generate-key", "ec-p256"
    )  # fmt: skip
    keys = deployment.private_keys()
    assert all(block["kind"].startswith("Private Key Object") for block in keys)
    # root, issuing, OCSP responder, TSA and at least this subscriber
    assert len(keys) >= 5, [block.get("label") for block in keys]
    for block in keys:
        access = _access(block)
        assert access >= REQUIRED_ACCESS, f"{block.get('label')}: Access: {block.get('Access')}"
        assert "extractable" not in access, f"{block.get('label')} is extractable"
    assert issued["key_label"] in {block.get("label") for block in keys}


def test_hsm_info_agrees_with_pkcs11_tool(deployment: Deployment) -> None:
    with deployment.lock:
        info = deployment.ok("hsm", "info")
        keys = deployment.private_keys()
    assert info["token_label"] == TOKEN_LABEL
    assert info["module"] == SOFTHSM_MODULE
    listed = {(key["label"], key["id"]) for key in info["private_keys"]}
    assert listed == {(block.get("label"), block.get("ID")) for block in keys}
    for key in info["private_keys"]:
        assert key["sensitive"] is True, key
        assert key["extractable"] is False, key
        assert key["never_extractable"] is True, key
        assert key["local"] is True, key
    labels = {key["label"] for key in info["private_keys"]}
    ca_labels = {ca["key_label"] for ca in (deployment.init_result["root_ca"], deployment.init_result["issuing_ca"])}
    assert ca_labels <= labels


def test_hsm_reconcile_lists_keys_without_a_record_and_destroys_only_pending_orphans(
    own_deployment: Deployment,
) -> None:
    import sqlite3

    deployment = own_deployment
    for label in ("govsign-sub-orphan-of-a-crash", "made-by-hand"):
        made = deployment.pkcs11_tool(
            "--keypairgen", "--key-type", "EC:prime256v1", "--label", label, "--id", label.encode().hex()[:32]
        )
        assert made.returncode == 0, made.stderr
    with sqlite3.connect(deployment.data_dir / "govsign.sqlite3") as connection:  # as the crashed issuance left it
        connection.execute(
            "INSERT INTO pending_keys (label, purpose, created_at) VALUES (?, ?, ?)",
            ("govsign-sub-orphan-of-a-crash", "certificate.issue", "2020-01-01 00:00:00.000000"),
        )
    listed = deployment.ok("hsm", "reconcile", "--dry-run")
    unrecorded = {key["label"]: key for key in listed["unrecorded"]}
    assert unrecorded["govsign-sub-orphan-of-a-crash"]["pending_since"] == "2020-01-01T00:00:00Z"
    assert unrecorded["made-by-hand"]["pending_since"] is None
    assert listed["destroyed"] == []
    done = deployment.ok("hsm", "reconcile")
    assert done["destroyed"] == ["govsign-sub-orphan-of-a-crash"]
    labels = {block.get("label") for block in deployment.private_keys()}
    assert "govsign-sub-orphan-of-a-crash" not in labels
    assert "made-by-hand" in labels, "a key without a pending marker is never destroyed"
    assert len(labels) >= 4  # root, issuing, OCSP responder, TSA: untouched
