"""PKCS11KeyStore on a real SoftHSM2 token: key attributes, signatures, errors, builders, threads."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from govsign.config import load_settings
from govsign.errors import ConfigurationError, GovsignError, HSMLoginError, HSMUnavailableError
from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, KeyRef, PublicKey, SignatureScheme
from govsign.keystore.cryptography_keys import hsm_private_key
from govsign.keystore.pkcs11 import PKCS11KeyStore

NOW = dt.datetime(2026, 1, 15, 3, 0, 0, tzinfo=dt.UTC)
HASHES = {
    HashAlgorithm.SHA256: hashes.SHA256(),
    HashAlgorithm.SHA384: hashes.SHA384(),
    HashAlgorithm.SHA512: hashes.SHA512(),
}
MESSAGE = "Quyết định số 30/2020/NĐ-CP về công tác văn thư".encode()

MakeKey = Callable[[KeyAlgorithm], KeyRef]


@pytest.fixture
def make_key(keystore: PKCS11KeyStore) -> Iterator[MakeKey]:
    """Generate keys with unique labels; destroyed after the test."""
    made: list[KeyRef] = []

    def make(algorithm: KeyAlgorithm) -> KeyRef:
        ref = keystore.generate_key_pair(label=f"test-{secrets.token_hex(6)}", algorithm=algorithm)
        made.append(ref)
        return ref

    yield make
    for ref in made:
        keystore.destroy_key_pair(ref)


@pytest.fixture(scope="module")
def rsa_key(keystore: PKCS11KeyStore) -> Iterator[KeyRef]:
    ref = keystore.generate_key_pair(label=f"test-rsa-{secrets.token_hex(4)}", algorithm=KeyAlgorithm.RSA2048)
    yield ref
    keystore.destroy_key_pair(ref)


@pytest.fixture(scope="module")
def ec_key(keystore: PKCS11KeyStore) -> Iterator[KeyRef]:
    ref = keystore.generate_key_pair(label=f"test-ec-{secrets.token_hex(4)}", algorithm=KeyAlgorithm.EC_P256)
    yield ref
    keystore.destroy_key_pair(ref)


def _verify(
    public: PublicKey, signature: bytes, message: bytes, scheme: SignatureScheme, algorithm: HashAlgorithm
) -> None:
    chosen = HASHES[algorithm]
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, message, ec.ECDSA(chosen))
    elif scheme is SignatureScheme.RSA_PSS:
        public.verify(signature, message, padding.PSS(mgf=padding.MGF1(chosen), salt_length=chosen.digest_size), chosen)
    else:
        public.verify(signature, message, padding.PKCS1v15(), chosen)


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithm", [KeyAlgorithm.RSA2048, KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384], ids=lambda a: a.value
)
def test_generated_keys_never_leave_the_token(
    keystore: PKCS11KeyStore, make_key: MakeKey, algorithm: KeyAlgorithm
) -> None:
    ref = make_key(algorithm)
    (info,) = [key for key in keystore.list_private_keys() if key.ref.key_id == ref.key_id]
    assert info.ref == ref
    assert info.sensitive is True
    assert info.extractable is False
    assert info.never_extractable is True
    assert info.local is True
    public = keystore.public_key(ref)
    if algorithm.is_rsa:
        assert isinstance(public, rsa.RSAPublicKey)
        assert (public.key_size, public.public_numbers().e) == (2048, 65537)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == algorithm.curve_name


def test_find_key_by_label(keystore: PKCS11KeyStore, make_key: MakeKey) -> None:
    ref = make_key(KeyAlgorithm.EC_P256)
    assert keystore.find_key(label=ref.label, algorithm=KeyAlgorithm.EC_P256) == ref
    assert keystore.find_key(label=ref.label, algorithm=KeyAlgorithm.RSA2048) is None
    assert keystore.find_key(label="no-such-key", algorithm=KeyAlgorithm.EC_P256) is None


def test_destroy_key_pair_removes_both_halves(keystore: PKCS11KeyStore) -> None:
    ref = keystore.generate_key_pair(label=f"test-{secrets.token_hex(6)}", algorithm=KeyAlgorithm.EC_P256)
    keystore.public_key(ref)  # caches the handle of the public half
    keystore.destroy_key_pair(ref)
    assert ref.key_id not in {key.ref.key_id for key in keystore.list_private_keys()}
    assert keystore.find_key(label=ref.label, algorithm=KeyAlgorithm.EC_P256) is None
    with pytest.raises(HSMUnavailableError, match="0 keys"):
        keystore.public_key(ref)


# -- signatures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(HashAlgorithm), ids=lambda a: a.value)
@pytest.mark.parametrize("scheme", [SignatureScheme.RSA_PKCS1V15, SignatureScheme.RSA_PSS], ids=lambda s: s.value)
def test_rsa_signatures_verify(
    keystore: PKCS11KeyStore, rsa_key: KeyRef, scheme: SignatureScheme, algorithm: HashAlgorithm
) -> None:
    signature = keystore.sign(rsa_key, MESSAGE, scheme=scheme, hash_algorithm=algorithm)
    _verify(keystore.public_key(rsa_key), signature, MESSAGE, scheme, algorithm)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm), ids=lambda a: a.value)
@pytest.mark.parametrize("scheme", [SignatureScheme.RSA_PKCS1V15, SignatureScheme.RSA_PSS], ids=lambda s: s.value)
def test_rsa_digest_signatures_verify(
    keystore: PKCS11KeyStore, rsa_key: KeyRef, scheme: SignatureScheme, algorithm: HashAlgorithm
) -> None:
    digest = hashlib.new(algorithm.value, MESSAGE).digest()
    signature = keystore.sign_digest(rsa_key, digest, scheme=scheme, hash_algorithm=algorithm)
    _verify(keystore.public_key(rsa_key), signature, MESSAGE, scheme, algorithm)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm), ids=lambda a: a.value)
def test_ecdsa_signatures_verify(keystore: PKCS11KeyStore, ec_key: KeyRef, algorithm: HashAlgorithm) -> None:
    public = keystore.public_key(ec_key)
    signature = keystore.sign(ec_key, MESSAGE, scheme=SignatureScheme.ECDSA, hash_algorithm=algorithm)
    _verify(public, signature, MESSAGE, SignatureScheme.ECDSA, algorithm)
    digest = hashlib.new(algorithm.value, MESSAGE).digest()
    signature = keystore.sign_digest(ec_key, digest, scheme=SignatureScheme.ECDSA, hash_algorithm=algorithm)
    _verify(public, signature, MESSAGE, SignatureScheme.ECDSA, algorithm)


def test_p384_signature_verifies(keystore: PKCS11KeyStore, make_key: MakeKey) -> None:
    ref = make_key(KeyAlgorithm.EC_P384)
    signature = keystore.sign(ref, MESSAGE, scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA384)
    _verify(keystore.public_key(ref), signature, MESSAGE, SignatureScheme.ECDSA, HashAlgorithm.SHA384)


def test_a_signature_over_other_bytes_does_not_verify(keystore: PKCS11KeyStore, ec_key: KeyRef) -> None:
    signature = keystore.sign(ec_key, MESSAGE, scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256)
    with pytest.raises(InvalidSignature):
        _verify(keystore.public_key(ec_key), signature, MESSAGE + b".", SignatureScheme.ECDSA, HashAlgorithm.SHA256)


def test_scheme_that_does_not_fit_the_key_is_refused(keystore: PKCS11KeyStore, rsa_key: KeyRef, ec_key: KeyRef) -> None:
    with pytest.raises(ValueError, match="does not go with"):
        keystore.sign(rsa_key, MESSAGE, scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256)
    with pytest.raises(ValueError, match="does not go with"):
        keystore.sign(ec_key, MESSAGE, scheme=SignatureScheme.RSA_PSS, hash_algorithm=HashAlgorithm.SHA256)


def test_digest_of_the_wrong_length_is_refused(keystore: PKCS11KeyStore, ec_key: KeyRef) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        keystore.sign_digest(ec_key, b"\x00" * 20, scheme=SignatureScheme.ECDSA, hash_algorithm=HashAlgorithm.SHA256)


# -- errors that name the setting -------------------------------------------------------------------


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and message[0].isupper() and ". " not in message and "\n" not in message


def test_wrong_pin_raises_hsm_login_error_naming_the_setting(softhsm2_module: str, spare_token_label: str) -> None:
    # The spare token: nobody in this process is logged in to it, so the PIN is really checked.
    store = PKCS11KeyStore(module_path=softhsm2_module, token_label=spare_token_label, pin="wrong-pin-9999")
    with pytest.raises(HSMLoginError) as caught:
        store.open()
    assert "GOVSIGN_HSM_PIN" in caught.value.message
    assert _one_sentence(caught.value.message)
    assert "wrong-pin-9999" not in caught.value.message


def test_right_pin_opens_the_spare_token(softhsm2_module: str, spare_token_label: str, hsm_pin: str) -> None:
    store = PKCS11KeyStore(module_path=softhsm2_module, token_label=spare_token_label, pin=hsm_pin)
    store.open()
    try:
        store.ping()
        assert store.token_info().token_label == spare_token_label
    finally:
        store.close()


def test_wrong_pin_is_refused_even_while_the_token_is_logged_in(keystore: PKCS11KeyStore, softhsm2_module: str) -> None:
    keystore.ping()  # the shared keystore is logged in to token "govsign"
    store = PKCS11KeyStore(module_path=softhsm2_module, token_label="govsign", pin="wrong-pin-9999")
    try:
        with pytest.raises(HSMLoginError):
            store.open()
    finally:
        store.close()


def test_missing_token_label_names_the_setting(softhsm2_module: str, hsm_data_dir: Path, hsm_pin: str) -> None:
    store = PKCS11KeyStore(module_path=softhsm2_module, token_label="no-such-token", pin=hsm_pin)
    with pytest.raises(ConfigurationError) as caught:
        store.open()
    assert not isinstance(caught.value, HSMLoginError)
    assert "GOVSIGN_HSM_TOKEN_LABEL" in caught.value.message
    assert _one_sentence(caught.value.message.replace("'govsign init'", "init"))


@pytest.mark.parametrize("path", ["/nonexistent/libpkcs11.so", "/etc/hostname"], ids=["missing", "not-a-library"])
def test_bad_module_path_names_the_setting(path: str, hsm_data_dir: Path, hsm_pin: str) -> None:
    store = PKCS11KeyStore(module_path=path, token_label="govsign", pin=hsm_pin)
    with pytest.raises(ConfigurationError) as caught:
        store.open()
    assert "GOVSIGN_PKCS11_MODULE" in caught.value.message
    assert path in caught.value.message


def test_settings_refuse_a_nonexistent_module_path() -> None:
    with pytest.raises(ConfigurationError, match="GOVSIGN_PKCS11_MODULE"):
        load_settings(pkcs11_module="/nonexistent/libpkcs11.so", _env_file=None)


# -- HSM keys in cryptography's builders ---------------------------------------------------------------

NAME = x509.Name(
    [x509.NameAttribute(NameOID.COMMON_NAME, "HSM test CA"), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
)
BUILDER_KEYS = [KeyAlgorithm.RSA2048, KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384]


def _self_signed(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, rsa_padding: padding.AsymmetricPadding | None = None
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(NAME)
        .issuer_name(NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(key, hashes.SHA256(), rsa_padding=rsa_padding)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", BUILDER_KEYS, ids=lambda a: a.value)
def test_certificate_builder_signs_with_hsm_key(
    keystore: PKCS11KeyStore, make_key: MakeKey, algorithm: KeyAlgorithm
) -> None:
    key = hsm_private_key(keystore, make_key(algorithm))
    certificate = _self_signed(key)
    certificate.verify_directly_issued_by(certificate)
    assert certificate.public_key() == key.public_key()


def test_certificate_builder_signs_rsa_pss_with_digest_length_salt(keystore: PKCS11KeyStore, rsa_key: KeyRef) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    certificate = _self_signed(hsm_private_key(keystore, rsa_key), pss)
    certificate.verify_directly_issued_by(certificate)


def test_rsa_pss_with_another_salt_length_is_honoured_or_refused(keystore: PKCS11KeyStore, rsa_key: KeyRef) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20)
    try:
        certificate = _self_signed(hsm_private_key(keystore, rsa_key), pss)
    except GovsignError:
        return  # refusing is fine
    certificate.verify_directly_issued_by(certificate)


@pytest.mark.parametrize("algorithm", BUILDER_KEYS, ids=lambda a: a.value)
def test_crl_builder_signs_with_hsm_key(keystore: PKCS11KeyStore, make_key: MakeKey, algorithm: KeyAlgorithm) -> None:
    key = hsm_private_key(keystore, make_key(algorithm))
    revoked = x509.RevokedCertificateBuilder().serial_number(0x1234_5678_9ABC_DEF0_1234).revocation_date(NOW).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(NAME)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(key, hashes.SHA384() if algorithm is KeyAlgorithm.EC_P384 else hashes.SHA256())
    )
    assert crl.is_signature_valid(key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(0x1234_5678_9ABC_DEF0_1234) is not None


@pytest.mark.parametrize("algorithm", BUILDER_KEYS, ids=lambda a: a.value)
def test_ocsp_response_builder_signs_with_hsm_key(
    keystore: PKCS11KeyStore, make_key: MakeKey, algorithm: KeyAlgorithm
) -> None:
    key = hsm_private_key(keystore, make_key(algorithm))
    issuer = _self_signed(key)
    subject_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(NAME)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=issuer,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + dt.timedelta(hours=4),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        .sign(key, hashes.SHA256())
    )
    parsed = ocsp.load_der_ocsp_response(response.public_bytes(serialization.Encoding.DER))
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(parsed.signature, parsed.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


# -- threads ---------------------------------------------------------------------------------------------


def test_concurrent_signing_from_threads_is_serialized(
    keystore: PKCS11KeyStore, ec_key: KeyRef, rsa_key: KeyRef
) -> None:
    """SoftHSM2 runs without its own locks under python-pkcs11; the module lock must serialize."""
    threads_count, per_thread = 8, 25
    results: list[tuple[KeyRef, bytes, bytes]] = []
    errors: list[BaseException] = []
    results_lock = threading.Lock()
    start = threading.Barrier(threads_count)

    def work(index: int) -> None:
        ref = ec_key if index % 2 else rsa_key
        scheme = SignatureScheme.ECDSA if index % 2 else SignatureScheme.RSA_PKCS1V15
        try:
            start.wait(timeout=30)
            for count in range(per_thread):
                message = f"thread {index} message {count}".encode()
                signature = keystore.sign(ref, message, scheme=scheme, hash_algorithm=HashAlgorithm.SHA256)
                with results_lock:
                    results.append((ref, message, signature))
        except BaseException as exc:
            with results_lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "signing threads did not finish"
    assert errors == []
    assert len(results) == threads_count * per_thread
    publics = {ec_key.key_id: keystore.public_key(ec_key), rsa_key.key_id: keystore.public_key(rsa_key)}
    for ref, message, signature in results:
        scheme = SignatureScheme.ECDSA if ref is ec_key else SignatureScheme.RSA_PKCS1V15
        _verify(publics[ref.key_id], signature, message, scheme, HashAlgorithm.SHA256)


# -- HMAC secrets generated on the token (the audit chain key) -------------------------------


def test_a_generated_hmac_secret_is_sensitive_never_extractable_and_computes_hmac_sha256(
    keystore: PKCS11KeyStore,
) -> None:
    import pkcs11 as p11
    from pkcs11 import Attribute, ObjectClass

    ref = keystore.generate_hmac_secret(label=f"test-mac-{secrets.token_hex(4)}")
    try:
        first = keystore.hmac_sha256(ref, MESSAGE)
        assert len(first) == 32 and keystore.hmac_sha256(ref, MESSAGE) == first
        assert keystore.hmac_sha256(ref, MESSAGE + b"!") != first

        def attributes(session: object) -> dict[str, object]:
            (secret,) = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: ref.key_id}))  # type: ignore[attr-defined]
            values = {name: secret[getattr(Attribute, name)] for name in ("SENSITIVE", "EXTRACTABLE", "LOCAL")}
            with pytest.raises(p11.exceptions.PKCS11Error):
                secret[Attribute.VALUE]
            return values

        assert keystore._call("inspect", attributes) == {"SENSITIVE": True, "EXTRACTABLE": False, "LOCAL": True}
    finally:
        keystore.destroy_secret(ref)
    with pytest.raises(HSMUnavailableError):
        keystore.hmac_sha256(ref, MESSAGE)


def test_find_keys_lists_every_key_with_a_label_by_id(keystore: PKCS11KeyStore) -> None:
    label = f"test-dup-{secrets.token_hex(4)}"
    refs = [keystore.generate_key_pair(label=label, algorithm=KeyAlgorithm.EC_P256) for _ in range(2)]
    try:
        assert [r.key_id for r in keystore.find_keys(label=label, algorithm=KeyAlgorithm.EC_P256)] == sorted(
            r.key_id for r in refs
        )
    finally:
        for ref in refs:
            keystore.destroy_key_pair(ref)
    assert keystore.find_keys(label=label, algorithm=KeyAlgorithm.EC_P256) == []
