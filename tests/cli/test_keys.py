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
