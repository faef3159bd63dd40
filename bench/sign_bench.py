"""Signing benchmark: govsign's REST API against baselines measured in the same run.

Started by ``bench/sign`` with the project's venv Python. See ``bench/sign --help``.

What it does, all on 127.0.0.1, in a temp dir that is removed on exit (also on Ctrl-C):

1. ``govsign init`` (RSA-2048 root, issuing CA, OCSP and TSA keys) on a fresh SoftHSM2 token +
   SQLite, one agency, an RA officer and a signer client (bench/sign_setup.py);
2. ``govsign serve --workers W``, wait for /readyz, and enrol through the API an organization
   certificate of the agency whose RSA-2048 key is generated in the HSM: the signing credential;
3. check every contender's output once: the API's and pyHanko's PDFs verify with pyHanko, both
   CMS signatures verify with ``openssl cms -verify`` over the document, both time-stamp
   replies are granted for the query's message imprint;
4. per scenario, the govsign side (a warm-up, then a measured run with C keep-alive
   ``http.client`` connections on C threads, closed loop) and its baseline:
   - pdf: a 1-page PDF signed PAdES B-B through ``POST /api/v1/signatures/pdf``, against
     pyHanko's ``signers.sign_pdf`` in this process with a software RSA-2048 key loaded once;
   - pdf-bt (not by default): the same at level B-T (time-stamped by govsign's own TSA), against
     the same pyHanko B-B figure, for information;
   - cms: a 1 MB random document signed CAdES detached B-B through
     ``POST /api/v1/signatures/cms``, against ``openssl cms -sign`` as one process per document
     (1 worker, then N in parallel);
   - tsa: the same RFC 3161 query answered by ``POST /pki/tsa``, against ``openssl ts -reply``
     as one process per request (1 worker, then N in parallel);
5. CPU accounting: the server's CPU time (utime+stime of its process group, from /proc), the
   baselines' (this process's thread CPU for pyHanko; the openssl processes' rusage), the load
   generator's (this process) and every other process's on the machine (which disturbs the
   numbers: a warning says so). The per-core figure of a contender is operations per CPU-second
   it used; the goals compare those;
6. with ``--profile``, after the server is stopped, in a child process with the server's settings
   and under cProfile: the PDF path of the service (``Signatures.sign_pdf``: credential
   checks, pyHanko with the HSM signer, audit event; no HTTP), the CMS path
   (``Signatures.sign_cms``) and the TSA (``TimeStampService.answer``);
7. print the result as Markdown on stdout (progress goes to stderr), with the goal verdicts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import parser as asn1_parser
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID
from ocsp_bench import (
    BenchError,
    Processes,
    cpu_model,
    free_port,
    group_cpu_seconds,
    machine_busy_seconds,
    openssl_version,
    wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
GOVSIGN = VENV_BIN / "govsign"
HOST = "127.0.0.1"
TEST_PIN = "bench-sign-1234"
AGENCY = "bench"
CMS_DOCUMENT_BYTES = 1024 * 1024
NOISE_CORES = 0.15

SCENARIOS = {
    "pdf": "PDF PAdES B-B, 1 page",
    "pdf-bt": "PDF PAdES B-T, 1 page",
    "cms": "CMS detached CAdES B-B, 1 MB",
    "tsa": "RFC 3161 time-stamp",
}
GOALS = {"pdf": 2.0, "pdf-bt": None, "cms": 5.0, "tsa": 10.0}


def log(message: str) -> None:
    print(f"[bench/sign {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Measured:
    """One measured run of one contender."""

    label: str
    ops: int
    seconds: float
    latencies: list[float]
    cpu: float
    """CPU seconds of the contender itself (the server, the openssl processes, pyHanko's thread)."""
    loadgen_cpu: float = 0.0
    other_cpu: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_s": self.ops / self.seconds if self.seconds else float("nan"),
            "p50_ms": 1000 * percentile(self.latencies, 0.50),
            "p99_ms": 1000 * percentile(self.latencies, 0.99),
            "cpu_ms_per_op": 1000 * self.cpu / self.ops if self.ops else float("nan"),
            "ops_per_cpu_s": self.ops / self.cpu if self.cpu else float("nan"),
            "cores": self.cpu / self.seconds if self.seconds else float("nan"),
            "loadgen_cores": self.loadgen_cpu / self.seconds if self.seconds else float("nan"),
            "other_cores": self.other_cpu / self.seconds if self.seconds else float("nan"),
            "errors": self.errors,
        }


# -- documents and baseline material -----------------------------------------------------------


def one_page_pdf() -> bytes:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    writer = PdfFileWriter()
    page = PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))
    writer.insert_page(page)
    buffer = BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def software_credential(common_name: str, *, timestamping: bool = False) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A throwaway RSA-2048 key and self-signed certificate (baselines only, not the product)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if timestamping:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return key, builder.sign(key, hashes.SHA256())


def write_pem(path: Path, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".pem")
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def write_ts_config(work: Path, workers: int) -> Path:
    """A minimal `openssl ts` configuration: one section (and serial file) per parallel worker."""
    key_path, cert_path = write_pem(work / "ts", *software_credential("openssl ts bench TSA", timestamping=True))
    sections = []
    for worker in range(workers):
        serial = work / f"tsaserial-{worker}"
        serial.write_text("01\n")
        sections.append(
            f"[ tsa_config{worker} ]\n"
            f"serial = {serial}\n"
            "crypto_device = builtin\n"
            f"signer_cert = {cert_path}\n"
            f"certs = {cert_path}\n"
            f"signer_key = {key_path}\n"
            "signer_digest = sha256\n"
            "default_policy = 1.3.6.1.4.1.32473.1.2\n"
            "digests = sha256, sha384, sha512\n"
            "accuracy = secs:1\n"
            "ordering = no\n"
            "tsa_name = no\n"
            "ess_cert_id_chain = no\n"
            "ess_cert_id_alg = sha256\n"
        )
    config = work / "ts.cnf"
    config.write_text("\n".join(sections))
    return config


def make_pyhanko_signer(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> Any:
    """A pyHanko SimpleSigner whose key stays loaded: the stock SimpleSigner.sign_raw parses the
    PKCS#8 key again for every signature (and cryptography then checks the RSA key), which costs
    more than the rest of a 1-page signature; "at its best" means without that."""
    from pyhanko.sign import signers
    from pyhanko.sign.general import get_pyca_cryptography_hash
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    class LoadedKeySigner(signers.SimpleSigner):
        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))

    return LoadedKeySigner(
        signing_cert=asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore(),  # type: ignore[no-untyped-call]
    )


def pyhanko_sign(signer: Any, pdf: bytes) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    output = BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf)),
        signers.PdfSignatureMetadata(
            field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        ),
        signer=signer,
        output=output,
    )
    return output.getvalue()


# -- checks ------------------------------------------------------------------------------------


def check_signed_pdf(
    signed: bytes,
    what: str,
    trust_root: x509.Certificate,
    serial: int | None = None,
    other_certificates: tuple[x509.Certificate, ...] = (),
) -> None:
    """One signature, intact, valid and trusted up to trust_root, its time-stamp too if any (no
    revocation fetching; other_certificates: intermediates a time-stamp token does not carry)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    signatures = PdfFileReader(BytesIO(signed)).embedded_signatures
    if len(signatures) != 1:
        raise BenchError(f"{what}: {len(signatures)} signatures in the signed PDF, expected 1")
    root, *others = (
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in (trust_root, *other_certificates)
    )
    status = validate_pdf_signature(
        signatures[0],
        signer_validation_context=ValidationContext(trust_roots=[root], allow_fetching=False),
        ts_validation_context=ValidationContext(trust_roots=[root], other_certs=others, allow_fetching=False),
    )
    if not status.bottom_line:
        raise BenchError(f"{what}: the PDF signature does not verify: {status.summary()}")
    if serial is not None and status.signing_cert.serial_number != serial:
        raise BenchError(f"{what}: signed by serial {status.signing_cert.serial_number:x}, expected {serial:x}")


def check_cms(work: Path, signature: bytes, document: Path, what: str) -> None:
    path = work / "check.p7s"
    path.write_bytes(signature)
    result = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify", "-out", os.devnull),
            *("-in", str(path), "-content", str(document)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{what}: the detached CMS signature does not verify over the document:\n{result.stderr}")


def check_timestamp(reply: bytes, query: bytes, what: str) -> None:
    response = tsp.TimeStampResp.load(reply)
    status = response["status"]["status"].native
    if status not in ("granted", "granted_with_mods"):
        raise BenchError(f"{what}: time-stamp not granted ({status})")
    info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    if info["message_imprint"].dump() != tsp.TimeStampReq.load(query)["message_imprint"].dump():
        raise BenchError(f"{what}: the time-stamp's message imprint is not the query's")


def describe_tsa_reply(data: bytes) -> str:
    """The PKIStatusInfo of a reply (asn1crypto's TimeStampResp insists on a token, so the
    status is parsed on its own)."""
    try:
        first = asn1_parser.parse(asn1_parser.parse(data)[4])
        status = tsp.PKIStatusInfo.load(first[3] + first[4])
        text = "; ".join(status["status_string"].native or [])
        return f"TSA {status['status'].native} {sorted(status['fail_info'].native or [])}: {text}"
    except (ValueError, TypeError, KeyError, IndexError):
        return f"{len(data)} bytes, not a TimeStampResp"


def describe_problem(data: bytes) -> str:
    try:
        problem = json.loads(data)
        return str(problem.get("detail") or problem.get("title"))[:120]
    except (ValueError, AttributeError):
        return f"{len(data)} bytes"


# -- load --------------------------------------------------------------------------------------


def http_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class HTTPTarget:
    port: int
    path: str
    body: bytes
    headers: dict[str, str]
    check: Callable[[bytes], bool]
    describe: Callable[[bytes], str] = lambda data: f"{len(data)} bytes"
    """What a body that fails the check is, for the error count."""


def run_http(target: HTTPTarget, server_pgid: int, *, concurrency: int, duration: float, label: str) -> Measured:
    """Closed loop: every thread keeps one keep-alive connection and sends its next request as
    soon as it has read the previous answer."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start_barrier = threading.Barrier(concurrency + 1)
    deadline = 0.0

    def worker(index: int) -> None:
        mine = latencies[index]
        connection = http.client.HTTPConnection(HOST, target.port, timeout=60)
        start_barrier.wait()
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    connection.request("POST", target.path, body=target.body, headers=target.headers)
                    response = connection.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors[type(exc).__name__] += 1
                    connection.close()
                    connection = http.client.HTTPConnection(HOST, target.port, timeout=60)
                    continue
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    with lock:
                        errors[f"HTTP {response.status}: {describe_problem(data)}"] += 1
                elif not target.check(data):
                    with lock:
                        errors[f"bad body: {target.describe(data)}"] += 1
                else:
                    mine.append(elapsed)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = group_cpu_seconds(server_pgid)
    busy_before = machine_busy_seconds()
    self_before = time.process_time()
    started = time.perf_counter()
    deadline = started + duration
    start_barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = group_cpu_seconds(server_pgid) - cpu_before
    loadgen = time.process_time() - self_before
    busy = machine_busy_seconds() - busy_before
    flat = [value for values in latencies for value in values]
    return Measured(
        label=label,
        ops=len(flat),
        seconds=seconds,
        latencies=flat,
        cpu=cpu,
        loadgen_cpu=loadgen,
        other_cpu=max(0.0, busy - cpu - loadgen),
        errors=dict(errors),
    )


def run_processes(argv_of: Callable[[int], list[str]], *, workers: int, duration: float, label: str) -> Measured:
    """One new process per operation, `workers` of them at a time, each worker sequential."""
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker(index: int) -> None:
        argv = argv_of(index)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                with lock:
                    errors[f"exit {result.returncode}"] += 1
            else:
                latencies[index].append(elapsed)

    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()
    self_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    launcher = time.process_time() - self_before
    busy = machine_busy_seconds() - busy_before
    flat = [value for values in latencies for value in values]
    return Measured(
        label=label,
        ops=len(flat),
        seconds=seconds,
        latencies=flat,
        cpu=cpu,
        loadgen_cpu=launcher,
        other_cpu=max(0.0, busy - cpu - launcher),
        errors=dict(errors),
    )


def run_pyhanko(signer: Any, pdf: bytes, *, duration: float) -> Measured:
    """pyHanko at its best: one thread, the key loaded once, everything in memory."""
    for _ in range(3):  # warm-up (first-use imports and caches)
        pyhanko_sign(signer, pdf)
    latencies: list[float] = []
    busy_before = machine_busy_seconds()
    self_before = time.process_time()
    thread_before = time.thread_time()
    started = time.perf_counter()
    deadline = started + duration
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        pyhanko_sign(signer, pdf)
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    cpu = time.thread_time() - thread_before
    own = time.process_time() - self_before
    busy = machine_busy_seconds() - busy_before
    return Measured(
        label="pyHanko in-process, 1 thread",
        ops=len(latencies),
        seconds=seconds,
        latencies=latencies,
        cpu=cpu,
        loadgen_cpu=max(0.0, own - cpu),
        other_cpu=max(0.0, busy - own),
    )


# -- profile -----------------------------------------------------------------------------------


def profile_child(work: Path, serial: str, seconds: float) -> None:
    """In a child process with the server's environment (the server is stopped): each profiled
    path for `seconds` unprofiled, then for `seconds` under cProfile; writes profile.json."""
    import cProfile
    import pstats

    from govsign.audit.events import AuditContext
    from govsign.config import Settings
    from govsign.services.authorization import Requester
    from govsign.services.bootstrap import Services
    from govsign.services.documents import SpooledDocument
    from govsign.services.signatures import CMSSigningRequest, PDFSigningRequest

    setup = json.loads((work / "setup.json").read_text())
    pdf = (work / "doc.pdf").read_bytes()
    content = (work / "doc.bin").read_bytes()
    query = (work / "query.tsq").read_bytes()
    services = Services.open(Settings())
    results: dict[str, Any] = {}
    try:
        principal = services.authentication.authenticate_token(setup["signer_token"])
        assert principal is not None
        context = AuditContext(client_id=principal.client_id, agency_id=principal.agency_id, request_id="bench")
        requester = Requester.client(principal, context)
        spool = work / "profile-spool"
        spool.mkdir(mode=0o700, exist_ok=True)

        def spooled(body: bytes) -> SpooledDocument:
            # What the route does: the body in a private file, hashed on the way.
            document = SpooledDocument.create(spool)
            document.path.write_bytes(body)
            document.size = len(body)
            document.remember("sha256", hashlib.sha256(body).digest())
            return document

        def sign_pdf() -> None:
            document = spooled(pdf)
            try:
                signed = services.signatures.sign_pdf(
                    document, PDFSigningRequest(credential=serial, level="B-B"), requester, None
                )
            finally:
                document.discard()
            for _ in signed.chunks():  # streamed back, then deleted
                pass

        def sign_cms() -> None:
            document = spooled(content)
            try:
                services.signatures.sign_cms(
                    document, CMSSigningRequest(credential=serial, level="B-B"), requester, None
                )
            finally:
                document.discard()

        def timestamp() -> None:
            services.timestamps.answer(query)

        for name, one, share in (("pdf", sign_pdf, 1.0), ("cms", sign_cms, 0.5), ("tsa", timestamp, 0.5)):
            budget = seconds * share
            for _ in range(5):
                one()
            count, cpu_before, started = 0, time.process_time(), time.perf_counter()
            while time.perf_counter() - started < budget:
                one()
                count += 1
            plain = {"ops": count, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu_before}
            profiler = cProfile.Profile()
            profiled, started = 0, time.perf_counter()
            profiler.enable()
            while time.perf_counter() - started < budget:
                one()
                profiled += 1
            profiler.disable()
            results[name] = summarise_profile(pstats.Stats(profiler), plain, profiled, PROFILE_MARKS[name])
    finally:
        services.close()
    (work / "profile.json").write_text(json.dumps(results))


def summarise_profile(
    stats: Any, plain: dict[str, float], profiled: int, marks: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    entries = stats.stats
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values())
    rows = []
    packages: Counter[str] = Counter()
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in entries.items():
        rows.append({"function": short_function(filename, line, name), "calls": nc, "tottime": tt, "cumtime": ct})
        packages[package_of(filename, name)] += tt
    found = {}
    for label, (suffix, function) in marks.items():
        times = [ct for (f, _l, n), (_cc, _nc, _tt, ct, _c) in entries.items() if f.endswith(suffix) and n == function]
        if times:
            found[label] = max(times)
    return {
        "plain": plain,
        "profiled_ops": profiled,
        "total": total,
        "by_cumulative": sorted(rows, key=lambda r: r["cumtime"], reverse=True)[:25],
        "by_self": sorted(rows, key=lambda r: r["tottime"], reverse=True)[:15],
        "packages": packages.most_common(12),
        "marks": found,
    }


#: Per profiled path, functions whose cumulative time the summary names: (file suffix, function).
PROFILE_MARKS: dict[str, dict[str, tuple[str, str]]] = {
    "pdf": {
        "whole service call (Signatures.sign_pdf)": ("govsign/services/signatures.py", "sign_pdf"),
        "step 1, credential checks in the database (_check)": ("govsign/services/signatures.py", "_check"),
        "step 3, audit event (_record)": ("govsign/services/signatures.py", "_record"),
        "pyHanko PdfSigner.sign_pdf": ("pyhanko/sign/signers/pdf_signer.py", "sign_pdf"),
        "HSM key operation (PKCS11KeyStore.sign)": ("govsign/keystore/pkcs11.py", "sign"),
        "opening the PDF (IncrementalPdfFileWriter)": ("pyhanko/pdf_utils/incremental_writer.py", "__init__"),
        "HSMSigner set-up (certificates parsed)": ("govsign/signing/pdf.py", "__init__"),
    },
    "cms": {
        "whole service call (Signatures.sign_cms)": ("govsign/services/signatures.py", "sign_cms"),
        "step 1, credential checks in the database (_check)": ("govsign/services/signatures.py", "_check"),
        "step 3, audit event (_record)": ("govsign/services/signatures.py", "_record"),
        "CAdES SignedData (signing.cms.sign_digest)": ("govsign/signing/cms.py", "sign_digest"),
        "HSM key operation (PKCS11KeyStore.sign)": ("govsign/keystore/pkcs11.py", "sign"),
        "HSM key operation (PKCS11KeyStore.sign_digest)": ("govsign/keystore/pkcs11.py", "sign_digest"),
    },
    "tsa": {
        "whole call (TimeStampService.answer)": ("govsign/services/status.py", "answer"),
        "TimeStampAuthority.answer": ("govsign/tsa/authority.py", "answer"),
        "token (TimeStampAuthority._grant)": ("govsign/tsa/authority.py", "_grant"),
        "HSM key operation (PKCS11KeyStore.sign)": ("govsign/keystore/pkcs11.py", "sign"),
    },
}

PROFILE_TITLES = {
    "pdf": "`Signatures.sign_pdf`, PAdES B-B of the 1-page PDF, RSA-2048 in SoftHSM2",
    "cms": "`Signatures.sign_cms`, CAdES detached B-B of the 1 MB document, RSA-2048 in SoftHSM2",
    "tsa": "`TimeStampService.answer`, the same RFC 3161 query, RSA-2048 TSA key in SoftHSM2",
}


def short_function(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name
    if filename.startswith(str(BENCH_DIR)):
        filename = "bench" + filename.removeprefix(str(BENCH_DIR))
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            if marker == "/lib/python3":
                filename = filename.split("/", 1)[1]
            break
    return f"{filename}:{line} {name}"


def package_of(filename: str, name: str) -> str:
    if filename == "~":
        if "_hashlib" in name or "sha" in name:
            return "hashing (C)"
        if "pkcs11" in name.lower():
            return "python-pkcs11 (C)"
        return "other C built-ins"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/govsign/" in filename:
        parts = filename.split("/src/govsign/", 1)[1].split("/")
        return "govsign." + parts[0].removesuffix(".py")
    if "/lib/python3" in filename:
        return "stdlib " + filename.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return filename


def profile_report(name: str, data: dict[str, Any], top: int) -> str:
    profiled = data["profiled_ops"] or 1
    plain = data["plain"]
    per_op = 1000 / profiled
    per_cpu = plain["ops"] / plain["cpu"] if plain["cpu"] else float("nan")
    lines = [
        f"### Profile: {PROFILE_TITLES[name]}; in-process, no HTTP; cProfile, {profiled} operations",
        "",
        f"Without the profiler the same loop made {plain['ops'] / plain['seconds']:.1f} operations/s, "
        f"{1000 * plain['cpu'] / max(1, plain['ops']):.2f} CPU ms per operation ({per_cpu:.1f} per CPU-second). "
        "Under cProfile everything is slower; the shares are what matters.",
        "",
        "| part of the path | ms/op (profiled) | share |",
        "| --- | ---: | ---: |",
    ]
    total = data["total"]
    for label, cumulative in data["marks"].items():
        lines.append(f"| {label} | {cumulative * per_op:.2f} | {100 * cumulative / total:.1f}% |")
    lines += ["", "Self time by package:", "", "| package | ms/op | share |", "| --- | ---: | ---: |"]
    for package, seconds in data["packages"][: max(6, top // 2)]:
        lines.append(f"| {package} | {seconds * per_op:.2f} | {100 * seconds / total:.1f}% |")
    lines += [
        "",
        f"Top {top} functions by cumulative time:",
        "",
        "| function | calls/op | cumulative ms/op | self ms/op |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in data["by_cumulative"][:top]:
        lines.append(
            f"| `{row['function']}` | {row['calls'] / profiled:.1f} | {row['cumtime'] * per_op:.2f} | "
            f"{row['tottime'] * per_op:.2f} |"
        )
    self_top = 15 if top >= 25 else 8
    lines += [
        "",
        f"Top {self_top} functions by self time:",
        "",
        "| function | calls/op | self ms/op |",
        "| --- | ---: | ---: |",
    ]
    for row in data["by_self"][:self_top]:
        lines.append(f"| `{row['function']}` | {row['calls'] / profiled:.1f} | {row['tottime'] * per_op:.2f} |")
    return "\n".join(lines)


# -- report ------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:,.{digits}f}"


def scenario_report(
    scenario: str, results: dict[str, dict[str, Any]], args: argparse.Namespace
) -> tuple[list[str], bool | None]:
    lines = [
        f"### {SCENARIOS[scenario]}",
        "",
        "| contender | ops/s | p50 ms | p99 ms | own CPU ms/op | ops per CPU-second (per core) | cores used |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results.values():
        lines.append(
            f"| {result['label']} | {fmt(result['ops_per_s'])} | {fmt(result['p50_ms'], 2)} | "
            f"{fmt(result['p99_ms'], 2)} | {fmt(result['cpu_ms_per_op'], 2)} | {fmt(result['ops_per_cpu_s'])} | "
            f"{fmt(result['cores'], 2)} |"
        )
    govsign = results.get("govsign")
    baselines = [r for key, r in results.items() if key != "govsign"]
    verdict: bool | None = None
    if govsign is not None and baselines:
        best_per_core = max(b["ops_per_cpu_s"] for b in baselines)
        best_raw = max(b["ops_per_s"] for b in baselines)
        per_core = govsign["ops_per_cpu_s"] / best_per_core
        raw = govsign["ops_per_s"] / best_raw
        goal = GOALS[scenario]
        lines.append("")
        text = (
            f"Per core (operations per CPU-second of the contender itself): govsign / best baseline = "
            f"**{per_core:.2f}x**; raw throughput govsign / best baseline = {raw:.2f}x."
        )
        if goal is not None:
            verdict = per_core >= goal
            text += f" Goal ≥ {goal:g}x per core: **{'PASS' if verdict else 'MISS'}**."
        else:
            text += " No goal (for information)."
        lines.append(text)
    for result in results.values():
        if result["errors"]:
            failed = ", ".join(f"{count} x {kind}" for kind, count in result["errors"].items())
            lines.append(f"FAILED requests of {result['label']} (not counted as operations): {failed}.")
    return lines, verdict


def report(
    results: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace, pdf_size: int, credential: str
) -> str:
    lines = [
        f"Signing benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores "
        "(`bench/sign`)",
        "",
    ]
    verdicts = {}
    for scenario, contenders in results.items():
        scenario_lines, verdict = scenario_report(scenario, contenders, args)
        lines += [*scenario_lines, ""]
        if verdict is not None:
            verdicts[scenario] = verdict
    lines += [
        "| scenario / contender | load generator or launcher cores | other processes' cores | errors |",
        "| --- | ---: | ---: | --- |",
    ]
    noisy = []
    for scenario, contenders in results.items():
        for result in contenders.values():
            errors = ", ".join(f"{k}: {v}" for k, v in result["errors"].items()) or "none"
            lines.append(
                f"| {scenario} / {result['label']} | {fmt(result['loadgen_cores'], 2)} | "
                f"{fmt(result['other_cores'], 2)} | {errors} |"
            )
            if result["other_cores"] > NOISE_CORES:
                noisy.append(f"{scenario} / {result['label']}")
    lines.append("")
    if verdicts:
        missed = [SCENARIOS[s] for s, ok in verdicts.items() if not ok]
        lines.append(
            f"{len(missed)} of {len(verdicts)} goals missed: {'; '.join(missed)}." if missed else "All goals met."
        )
        lines.append("")
    lines += [
        f"Setup: govsign `serve --workers {args.workers}` (uvicorn), SQLite, SoftHSM2, the credential an "
        f"organization certificate ({credential}) with an RSA-2048 key generated in the HSM, issued by an RSA-2048 "
        f"CA; B-T time-stamps by govsign's own TSA (EC P-256 in the HSM, the default). Load: {args.concurrency} keep-alive "
        f"`http.client` connections on as many threads in the benchmark process, closed loop, "
        f"{args.duration:g} s per run after a {args.warmup:g} s warm-up. The PDF is a 1-page PDF of {pdf_size} "
        f"bytes; the CMS document 1 MiB of random bytes; the TSA query SHA-256 with a nonce and certReq, the same "
        f"for every request. Baselines: a software RSA-2048 key with a self-signed certificate (the HSM key cannot "
        f"be exported); pyHanko B-B with md sha256 in one thread of the benchmark process; "
        f"`openssl cms -sign -binary -md sha256 -outform DER` and `openssl ts -reply` ({openssl_version()}) as a "
        f"new process per operation, 1 worker and {args.openssl_workers} workers in parallel.",
        "Per core: each contender's operations divided by the CPU time it used itself: the server's process "
        "group (utime+stime from /proc) for govsign; the pyHanko thread's CPU time; the openssl processes' rusage. "
        f"The load generator shares the machine's {os.cpu_count()} cores with the server; its CPU is not "
        "charged to govsign. p50/p99 are per operation at saturation (closed loop).",
    ]
    if noisy:
        lines.append(
            f"WARNING: other processes used more than {NOISE_CORES:g} cores during: {', '.join(noisy)}; "
            "raw throughput is disturbed (per-core figures less so); run again on an idle machine."
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/sign",
        description="PDF, CMS and TSA signing throughput of govsign's API against in-process pyHanko, "
        "`openssl cms -sign` and `openssl ts -reply` (127.0.0.1 only).",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured run (10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of the warm-up before each API run (2)")
    parser.add_argument("--concurrency", type=int, default=4, help="keep-alive connections to the API (4)")
    parser.add_argument("--workers", type=int, default=1, help="govsign serve --workers (1)")
    parser.add_argument("--openssl-workers", type=int, default=2, help="parallel openssl processes (2; also 1)")
    parser.add_argument(
        "--scenarios", default="pdf,cms,tsa", help=f"comma-separated, out of {','.join(SCENARIOS)} (pdf,cms,tsa)"
    )
    parser.add_argument("--only", choices=("govsign", "baseline"), help="run only this side (no ratios)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the PDF (top 25 by cumulative time), CMS and TSA paths in-process under cProfile",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=8, help="seconds of the PDF profile, half that for CMS and TSA (8)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, documents, keys)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--profile-child", nargs=2, metavar=("WORKDIR", "SERIAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenario_list if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (choose from {', '.join(SCENARIOS)})")
    if not args.scenario_list and not args.profile:
        parser.error("nothing to do: give --scenarios or --profile")
    if args.concurrency < 1 or args.openssl_workers < 1 or args.workers < 1:
        parser.error("--concurrency, --workers and --openssl-workers must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    if args.profile_child:
        profile_child(Path(args.profile_child[0]), args.profile_child[1], args.profile_seconds)
        return 0
    if shutil.which("openssl") is None:
        raise BenchError("openssl is not installed")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    processes = Processes()
    work = Path(tempfile.mkdtemp(prefix="govsign-bench-sign-"))
    started = time.monotonic()
    run_govsign = args.only != "baseline"
    run_baseline = args.only != "govsign"
    try:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GOVSIGN_") and k not in ("SOFTHSM2_CONF", "VIRTUAL_ENV")
        }
        env.update(
            GOVSIGN_DATA_DIR=str(work / "data"),
            GOVSIGN_PUBLIC_BASE_URL=f"http://{HOST}:{port}",
            GOVSIGN_HSM_PIN=TEST_PIN,
            GOVSIGN_LINT_WITH_PKILINT="false",  # certificate linting is not what is measured
        )

        pdf = one_page_pdf()
        (work / "doc.pdf").write_bytes(pdf)
        document = work / "doc.bin"
        document.write_bytes(os.urandom(CMS_DOCUMENT_BYTES))
        query_file = work / "query.tsq"
        subprocess.run(
            ["openssl", "ts", "-query", "-data", str(document), "-sha256", "-cert", "-out", str(query_file)],
            capture_output=True,
            check=True,
        )
        query = query_file.read_bytes()

        need_server = (run_govsign and bool(args.scenario_list)) or args.profile
        server_pgid = 0
        credential = ""
        signer_token = ""
        if need_server:
            log(f"setting up govsign in {work}: init, agency, clients")
            setup = subprocess.run(
                [sys.executable, str(BENCH_DIR / "sign_setup.py"), str(work / "setup.json"), AGENCY],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if setup.returncode != 0:
                raise BenchError(f"setup failed:\n{setup.stdout[-2000:]}\n{setup.stderr[-4000:]}")
            data = json.loads((work / "setup.json").read_text())
            signer_token = data["signer_token"]
            govsign_root = x509.load_pem_x509_certificate(data["init"]["root_ca"]["certificate_pem"].encode())
            govsign_issuing = x509.load_pem_x509_certificate(data["init"]["issuing_ca"]["certificate_pem"].encode())
            log(f"starting govsign serve --workers {args.workers} on port {port}")
            server = processes.start(
                [str(GOVSIGN), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)],
                log_path=work / "govsign.log",
                cwd=work,
                env=env,
            )
            server_pgid = server.pid

            def ready() -> bool:
                connection = http.client.HTTPConnection(HOST, port, timeout=10)
                try:
                    connection.request("GET", "/readyz")
                    return connection.getresponse().status == 200
                finally:
                    connection.close()

            wait_for("govsign serve", ready, server, work / "govsign.log", 60)
            status, body = http_post(
                port,
                "/api/v1/certificates",
                json.dumps(
                    {
                        "profile": "organization",
                        "subject": "CN=Con dấu đo hiệu năng,O=Cơ quan đo hiệu năng,C=VN",
                        "key_algorithm": "rsa2048",
                        "agency_id": AGENCY,
                    }
                ).encode(),
                {"Authorization": f"Bearer {data['ra_token']}", "Content-Type": "application/json"},
            )
            if status != 201:
                raise BenchError(f"enrolling the signing credential failed: HTTP {status}: {body[:2000]!r}")
            credential = json.loads(body)["serial"]
            log(f"signing credential {credential} (organization, RSA-2048 in the HSM)")

        auth = {"Authorization": f"Bearer {signer_token}"}
        targets = {
            "pdf": HTTPTarget(
                port,
                f"/api/v1/signatures/pdf?credential={credential}&level=B-B",
                pdf,
                {**auth, "Content-Type": "application/pdf"},
                lambda data: data.startswith(b"%PDF-") and len(data) > len(pdf),
            ),
            "pdf-bt": HTTPTarget(
                port,
                f"/api/v1/signatures/pdf?credential={credential}&level=B-T",
                pdf,
                {**auth, "Content-Type": "application/pdf"},
                lambda data: data.startswith(b"%PDF-") and len(data) > len(pdf),
            ),
            "cms": HTTPTarget(
                port,
                f"/api/v1/signatures/cms?credential={credential}&level=B-B",
                document.read_bytes(),
                {**auth, "Content-Type": "application/octet-stream"},
                lambda data: data[:1] == b"\x30" and len(data) > 1000,
            ),
            "tsa": HTTPTarget(
                port,
                "/pki/tsa",
                query,
                {"Content-Type": "application/timestamp-query"},
                lambda data: data[:1] == b"\x30" and len(data) > 1000,
                describe_tsa_reply,
            ),
        }

        # Baseline material.
        pdf_key, pdf_certificate = software_credential("pyHanko bench signer")
        pdf_signer = make_pyhanko_signer(pdf_key, pdf_certificate)
        cms_key, cms_cert = write_pem(work / "cms", *software_credential("openssl cms bench signer"))
        ts_config = write_ts_config(work, args.openssl_workers)

        def cms_argv(worker: int) -> list[str]:
            return [
                *("openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER"),
                *("-in", str(document), "-signer", str(cms_cert), "-inkey", str(cms_key)),
                *("-out", str(work / f"cms-{worker}.p7s")),
            ]

        def ts_argv(worker: int) -> list[str]:
            return [
                *("openssl", "ts", "-reply", "-queryfile", str(query_file), "-config", str(ts_config)),
                *("-section", f"tsa_config{worker}", "-out", str(work / f"ts-{worker}.tsr")),
            ]

        log("checking every contender's output once")
        scenarios = args.scenario_list
        if run_govsign:
            for scenario in scenarios:
                target = targets[scenario]
                status, body = http_post(port, target.path, target.body, target.headers)
                if status != 200 or not target.check(body):
                    raise BenchError(f"govsign {scenario}: HTTP {status}: {body[:2000]!r}")
                if scenario in ("pdf", "pdf-bt"):
                    check_signed_pdf(body, f"govsign {scenario}", govsign_root, int(credential, 16), (govsign_issuing,))
                elif scenario == "cms":
                    check_cms(work, body, document, "govsign cms")
                else:
                    check_timestamp(body, query, "govsign tsa")
        if run_baseline:
            if {"pdf", "pdf-bt"} & set(scenarios):
                check_signed_pdf(pyhanko_sign(pdf_signer, pdf), "pyHanko baseline", pdf_certificate)
            if "cms" in scenarios:
                subprocess.run(cms_argv(0), capture_output=True, check=True)
                check_cms(work, (work / "cms-0.p7s").read_bytes(), document, "openssl cms")
            if "tsa" in scenarios:
                subprocess.run(ts_argv(0), capture_output=True, check=True)
                check_timestamp((work / "ts-0.tsr").read_bytes(), query, "openssl ts")

        results: dict[str, dict[str, dict[str, Any]]] = {}
        pyhanko_result: dict[str, Any] | None = None
        for scenario in scenarios:
            contenders: dict[str, dict[str, Any]] = {}
            if run_govsign:
                target = targets[scenario]
                if args.warmup > 0:
                    run_http(target, server_pgid, concurrency=args.concurrency, duration=args.warmup, label="warm-up")
                log(f"{SCENARIOS[scenario]}: govsign API, {args.concurrency} connections, {args.duration:g} s")
                measured = run_http(
                    target,
                    server_pgid,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    label=f"govsign API, {args.concurrency} connections, `--workers {args.workers}`",
                )
                contenders["govsign"] = measured.summary()
                log_result(contenders["govsign"])
                assert server_pgid
                if processes.started and processes.started[0][0].poll() is not None:
                    log_file = work / "govsign.log"
                    raise BenchError(f"govsign died under load:\n{log_file.read_text(errors='replace')[-3000:]}")
            if run_baseline:
                if scenario in ("pdf", "pdf-bt"):
                    if pyhanko_result is None:
                        log(f"{SCENARIOS['pdf']}: pyHanko in-process, {args.duration:g} s")
                        pyhanko_result = run_pyhanko(pdf_signer, pdf, duration=args.duration).summary()
                        log_result(pyhanko_result)
                    contenders["pyhanko"] = pyhanko_result
                else:
                    argv_of = cms_argv if scenario == "cms" else ts_argv
                    name = "openssl cms -sign" if scenario == "cms" else "openssl ts -reply"
                    for workers in sorted({1, args.openssl_workers}):
                        log(f"{SCENARIOS[scenario]}: {name}, {workers} worker(s), {args.duration:g} s")
                        measured = run_processes(
                            argv_of,
                            workers=workers,
                            duration=args.duration,
                            label=f"`{name}`, process per op, {workers} worker{'s' if workers > 1 else ''}",
                        )
                        contenders[f"openssl-{workers}"] = measured.summary()
                        log_result(contenders[f"openssl-{workers}"])
            results[scenario] = contenders

        profile_data: dict[str, Any] | None = None
        if args.profile:
            processes.stop_all()  # the profile runs alone
            log(f"profiling the PDF, CMS and TSA paths in-process ({4 * args.profile_seconds:g} s)")
            child = subprocess.run(
                [
                    *(sys.executable, str(Path(__file__).resolve()), "--profile-child", str(work), credential),
                    *("--profile-seconds", str(args.profile_seconds)),
                ],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if child.returncode != 0:
                raise BenchError(f"the profile failed:\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}")
            profile_data = json.loads((work / "profile.json").read_text())

        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "results": results,
                        "goals": {s: GOALS[s] for s in results},
                        "profile": profile_data,
                        "cpu": cpu_model(),
                        "cores": os.cpu_count(),
                    },
                    indent=2,
                )
            )
        print()
        if results:
            print(report(results, args, len(pdf), credential))
        if profile_data is not None:
            for name, data in profile_data.items():
                print()
                print(profile_report(name, data, 25 if name == "pdf" else 12))
        log(f"done in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        processes.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def log_result(result: dict[str, Any]) -> None:
    errors = f", errors {result['errors']}" if result["errors"] else ""
    log(
        f"  {result['label']}: {result['ops_per_s']:,.1f} ops/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, {result['cpu_ms_per_op']:.2f} CPU ms/op "
        f"({result['ops_per_cpu_s']:,.1f} per CPU-second), other processes {result['other_cores']:.2f} cores" + errors
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/sign: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/sign: interrupted; server stopped and temp dir removed", file=sys.stderr)
        sys.exit(130)
