"""`govsign init`: the hierarchy it creates, idempotence, refusal of other parameters, the
data dir it lays out, and the CA certificates checked with openssl and pkilint."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from cryptography import x509

from helpers.cli import (
    TOKEN_LABEL,
    Deployment,
    assert_lint_clean,
    assert_ok,
    assert_one_sentence_error,
    openssl,
    openssl_verify,
)


def test_init_json_names_root_and_issuing_ca_with_id_and_pem(deployment: Deployment) -> None:
    result = deployment.init_result
    assert result["created"] is True
    root, issuing = result["root_ca"], result["issuing_ca"]
    assert root["id"] and issuing["id"] and root["id"] != issuing["id"]
    assert issuing["parent_id"] == root["id"]
    assert root["key_algorithm"] == deployment.root_key
    assert issuing["key_algorithm"] == deployment.issuing_key
    root_cert = x509.load_pem_x509_certificate(root["certificate_pem"].encode())
    issuing_cert = x509.load_pem_x509_certificate(issuing["certificate_pem"].encode())
    assert root_cert.subject == root_cert.issuer
    assert issuing_cert.issuer == root_cert.subject
    constraints = issuing_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    assert format(root_cert.serial_number, "x") == root["serial"]


def test_second_init_succeeds_changes_nothing_and_keeps_the_root(deployment: Deployment) -> None:
    first = deployment.init_result
    with deployment.unchanged():
        again = deployment.ok("init")
        same_options = deployment.run("init", *deployment.init_args)
    assert again["created"] is False
    for role in ("root_ca", "issuing_ca"):
        assert again[role]["id"] == first[role]["id"]
        assert again[role]["certificate_pem"] == first[role]["certificate_pem"]
    assert_ok(same_options)
    assert "nothing was changed" in same_options.stdout


def test_second_init_with_another_root_key_is_refused_and_changes_nothing(deployment: Deployment) -> None:
    other = "ec-p256" if deployment.root_key != "ec-p256" else "rsa2048"
    with deployment.unchanged():  # the CAs (ids, serials), the certificates and the token's objects
        result = deployment.run("init", "--root-key", other)
    assert_one_sentence_error(result, "root key", deployment.root_key)


def _service_certificates(deployment: Deployment) -> dict[str, Path]:
    found = deployment.service_pems()
    assert set(found) == {"ocsp-responder", "tsa"}, "init should create the OCSP responder and TSA certificates"
    return found


def test_ca_chain_verifies_with_openssl(deployment: Deployment) -> None:
    root, issuing = deployment.root_pem, deployment.issuing_pem
    assert_ok(openssl_verify(root, root))
    assert_ok(openssl_verify(root, issuing))
    services = _service_certificates(deployment)
    for profile, purpose in (("ocsp-responder", "ocsphelper"), ("tsa", "timestampsign")):
        result = openssl(
            "verify", "-purpose", purpose, "-CAfile", str(root), "-untrusted", str(issuing), str(services[profile])
        )
        assert_ok(result)


def test_ca_certificates_are_pkilint_clean(deployment: Deployment) -> None:
    root, issuing = deployment.root_pem, deployment.issuing_pem
    assert_lint_clean(root)
    assert_lint_clean(issuing)
    assert_lint_clean(root, issuing, chain=True)


def test_ocsp_responder_and_tsa_certificates_are_pkilint_clean(deployment: Deployment) -> None:
    for path in _service_certificates(deployment).values():
        assert_lint_clean(path)
        assert_lint_clean(deployment.issuing_pem, path, chain=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_has_softhsm2_conf_and_private_token_store(deployment: Deployment) -> None:
    with deployment.lock:
        _check_layout(deployment)


def _check_layout(deployment: Deployment) -> None:
    data = deployment.data_dir
    conf = data / "softhsm2.conf"
    tokens = data / "tokens"
    assert conf.is_file()
    assert tokens.is_dir() and any(tokens.iterdir()), "the token store is empty"
    tokendir_lines = [line for line in conf.read_text().splitlines() if line.strip().startswith("directories.tokendir")]
    assert len(tokendir_lines) == 1
    assert Path(tokendir_lines[0].split("=", 1)[1].strip()).resolve() == tokens.resolve()
    assert _mode(data) & 0o077 == 0, f"data dir mode {oct(_mode(data))}"
    assert _mode(tokens) & 0o077 == 0, f"token store mode {oct(_mode(tokens))}"
    # The standard tool works on it, as the contract promises.
    listing = deployment.pkcs11_tool("--list-objects")
    assert_ok(listing)
    assert "Private Key Object" in listing.stdout
    # The database lives where GOVSIGN_DATABASE_URL says.
    assert (data / "govsign.sqlite3").exists() is (deployment.database_url is None)


def test_configured_pin_is_written_nowhere_in_the_data_dir(deployment: Deployment) -> None:
    assert deployment.pin is not None
    secret = deployment.pin.encode()
    with deployment.lock:  # no command is running: the SQLite journal files are stable
        for path in deployment.data_dir.rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), f"the PIN is in {path}"
        for path in deployment.data_dir.iterdir():
            if "pin" in path.name.lower():
                assert _mode(path) == 0o600, f"{path.name} has mode {oct(_mode(path))}"


def test_generated_pin_file_has_mode_0600_and_opens_the_token(small_deployment: Deployment) -> None:
    pin_files = [path for path in small_deployment.data_dir.iterdir() if "pin" in path.name.lower()]
    assert pin_files, "no PIN was generated in the data dir although GOVSIGN_HSM_PIN is unset"
    for path in pin_files:
        assert _mode(path) == 0o600, f"{path.name} has mode {oct(_mode(path))}"
    logins = [
        small_deployment.pkcs11_tool("--list-objects", pin=path.read_text().splitlines()[0].strip())
        for path in pin_files
    ]
    assert any(result.returncode == 0 for result in logins), "no generated PIN opens the token"
    # And the CLI itself keeps working from the generated PIN.
    info = small_deployment.ok("hsm", "info")
    assert info["token_label"] == TOKEN_LABEL


_EC_KEYS = ("--root-key", "ec-p256", "--issuing-key", "ec-p256", "--service-key", "ec-p256")


def _loose_modes(data_dir: Path) -> list[str]:
    """Every path under the data dir (itself included) that anyone but its owner may use."""
    loose = []
    for path in [data_dir, *data_dir.rglob("*")]:
        wanted = 0o700 if path.is_dir() else 0o600
        if not path.is_symlink() and _mode(path) != wanted:
            loose.append(f"{path.relative_to(data_dir.parent)} {oct(_mode(path))}")
    return loose


def test_init_in_a_hand_made_0755_data_dir_leaves_it_0700_and_every_file_0600() -> None:
    """The fault campaign found the SQLite database, its -wal and -shm files and softhsm2.conf
    at 0644 and a data dir made by hand before init left at 0755. Run with umask 022, as a
    login shell has it: the CLI sets its own."""
    workdir = Path(tempfile.mkdtemp(prefix="govsign-modes-"))
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    deployment = Deployment(
        name="modes", workdir=workdir, data_dir=data_dir, pin=None, init_args=_EC_KEYS, root_key="ec-p256"
    )
    previous = os.umask(0o022)
    try:
        assert_ok(deployment.run("init", *_EC_KEYS))
        assert_ok(deployment.run("cert", "list", "--json"))  # opens the database again (-wal, -shm)
        assert _loose_modes(data_dir) == []
        assert {"govsign.sqlite3", "softhsm2.conf"} <= {path.name for path in data_dir.iterdir()}
        # made loose again by hand (an older version, a restore): init tightens it
        (data_dir / "softhsm2.conf").chmod(0o644)
        (data_dir / "govsign.sqlite3").chmod(0o644)
        data_dir.chmod(0o755)
        (data_dir / "tokens").chmod(0o755)
        assert_ok(deployment.run("init", *_EC_KEYS))
        assert _loose_modes(data_dir) == []
    finally:
        os.umask(previous)
        shutil.rmtree(workdir, ignore_errors=True)
