"""Remote-signing benchmark: CSC ``signatures/signHash`` with an agency seal credential, against the
raw HSM signing rate of the same key type measured through python-pkcs11 in the same run.

Started by ``bench/csc`` with the project's venv Python. What it does, on 127.0.0.1 in a temp
dir removed on exit:

1. ``govsign init`` on a fresh SoftHSM2 token + SQLite, an agency, an RA officer and a signer
   client (bench/sign_setup.py); ``govsign serve --workers W``; an organization certificate with
   an RSA-2048 key generated in the HSM, enrolled through the API; a CSC access token
   (``/csc/v2/auth/login``);
2. the ceiling: a second SoftHSM2 token of its own, an RSA-2048 key on it, ``C_Sign`` with
   CKM_RSA_PKCS over a SHA-256 DigestInfo (what the service asks the HSM for) in a loop in this
   process, in one thread (SoftHSM2 calls are serialized per process: DESIGN.md): signatures
   per second and per CPU-second;
3. per batch size (1 and 100 hashes per request), closed loop with C client threads: each
   iteration is ``credentials/authorize`` (a SAD for the batch, as a seal is authorized: SCAL 1)
   then ``signatures/signHash``; every signature of the first iteration is verified with the
   certificate's public key. The server's CPU (its process group, from /proc) gives signatures
   per server CPU-second;
4. prints Markdown: the table and the goal verdicts (batches of 100 at >= 80% of the raw HSM
   rate per core; a batch of 1 within 2x of the raw cost per signature).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from ocsp_bench import BenchError, Processes, free_port, group_cpu_seconds, machine_busy_seconds, wait_for

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
GOVSIGN = VENV_BIN / "govsign"
HOST = "127.0.0.1"
TEST_PIN = "bench-csc-1234"
AGENCY = "bench"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
RSA_OID = "1.2.840.113549.1.1.1"
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


def log(message: str) -> None:
    print(f"[bench/csc {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Result:
    label: str
    signatures: int
    seconds: float
    cpu: float
    other_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return self.signatures / self.seconds if self.seconds else float("nan")

    @property
    def per_cpu_second(self) -> float:
        return self.signatures / self.cpu if self.cpu else float("nan")


def raw_hsm_rate(work: Path, seconds: float, threads: int) -> Result:
    """C_Sign (CKM_RSA_PKCS over a SHA-256 DigestInfo) with an RSA-2048 key on a SoftHSM2 token
    of its own, ``threads`` sessions in parallel, in this process."""
    import pkcs11
    from pkcs11 import KeyType, Mechanism

    tokens = work / "raw-tokens"
    tokens.mkdir()
    conf = work / "raw-softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "raw", "--pin", TEST_PIN, "--so-pin", TEST_PIN],
        capture_output=True,
        check=True,
    )
    module = next(
        path
        for path in ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")
        if Path(path).exists()
    )  # fmt: skip
    lib = pkcs11.lib(module)
    token = lib.get_token(token_label="raw")
    digest_info = DIGEST_INFO_SHA256 + hashlib.sha256(b"raw").digest()
    # the login is the application's (PKCS#11): one logged-in session, the workers' share it
    login = token.open(user_pin=TEST_PIN, rw=True)
    login.generate_keypair(KeyType.RSA, 2048, label="raw", store=True)
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(index: int) -> None:
        with token.open() as session:
            key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="raw")
            key.sign(digest_info, mechanism=Mechanism.RSA_PKCS)
            barrier.wait()
            while time.perf_counter() < deadline:
                key.sign(digest_info, mechanism=Mechanism.RSA_PKCS)
                counts[index] += 1

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    cpu_before, busy_before = time.process_time(), machine_busy_seconds()
    started = time.perf_counter()
    deadline = started + seconds
    barrier.wait()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    other = max(0.0, machine_busy_seconds() - busy_before - cpu)
    login.close()
    return Result(f"python-pkcs11 C_Sign, {threads} thread(s)", sum(counts), elapsed, cpu, other)


def post(connection: http.client.HTTPConnection, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    connection.request(
        "POST",
        path,
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise BenchError(f"{path}: HTTP {response.status}: {data[:300]!r}")
    return dict(json.loads(data))


def run_csc(
    port: int, token: str, credential: str, certificate: x509.Certificate, *, batch: int, clients: int,
    seconds: float, server_pgid: int,
) -> Result:  # fmt: skip
    """Closed loop: authorize a SAD for ``batch`` signatures, then signHash ``batch`` hashes."""
    hashes_b64 = [base64.b64encode(hashlib.sha256(f"{batch}-{i}".encode()).digest()).decode() for i in range(batch)]
    counts = [0] * clients
    errors: Counter[str] = Counter()
    barrier = threading.Barrier(clients + 1)
    deadline = 0.0
    checked = threading.Event()

    def iteration(connection: http.client.HTTPConnection) -> list[str]:
        sad = post(connection, "/csc/v2/credentials/authorize",
                   {"credentialID": credential, "numSignatures": batch}, token)["SAD"]  # fmt: skip
        body = {"credentialID": credential, "SAD": sad, "hashes": hashes_b64, "hashAlgorithmOID": SHA256_OID,
                "signAlgo": RSA_OID}  # fmt: skip
        return list(post(connection, "/csc/v2/signatures/signHash", body, token)["signatures"])

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        signatures = iteration(connection)  # warm-up, and the check
        if not checked.is_set():
            public_key = certificate.public_key()
            for value, digest in zip(signatures, hashes_b64, strict=True):
                public_key.verify(  # type: ignore[call-arg, union-attr]
                    base64.b64decode(value), base64.b64decode(digest), padding.PKCS1v15(), Prehashed(hashes.SHA256())
                )
            checked.set()
        barrier.wait()
        while time.perf_counter() < deadline:
            try:
                counts[index] += len(iteration(connection))
            except (OSError, http.client.HTTPException, BenchError) as exc:
                errors[str(exc)[:80]] += 1
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=60)
        connection.close()

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in workers:
        thread.start()
    cpu_before, busy_before, self_before = group_cpu_seconds(server_pgid), machine_busy_seconds(), time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    barrier.wait()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = group_cpu_seconds(server_pgid) - cpu_before
    loadgen = time.process_time() - self_before
    other = max(0.0, machine_busy_seconds() - busy_before - cpu - loadgen)
    if errors:
        log(f"errors in batch {batch}: {dict(errors)}")
    return Result(f"signHash, batch {batch}, {clients} client(s)", sum(counts), elapsed, cpu, other)


def main() -> int:
    parser = argparse.ArgumentParser(description="CSC signHash against the raw HSM rate (see the module docstring).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="govsign serve --workers (default 1)")
    parser.add_argument("--clients", type=int, default=4, help="client threads for a batch of 1 (default 4)")
    args = parser.parse_args()
    if shutil.which("softhsm2-util") is None:
        raise BenchError("softhsm2-util is not installed")
    processes = Processes()
    work = Path(tempfile.mkdtemp(prefix="govsign-bench-csc-"))
    cores = os.cpu_count() or 1
    try:
        ceiling = raw_hsm_rate(work, args.duration, 1)  # one thread: SoftHSM2 calls are serialized per process
        log(f"raw HSM: {ceiling.per_second:.0f}/s, {ceiling.per_cpu_second:.0f} per CPU-second")
        os.environ.pop("SOFTHSM2_CONF", None)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "VIRTUAL_ENV"}
        env.update(
            GOVSIGN_DATA_DIR=str(work / "data"),
            GOVSIGN_PUBLIC_BASE_URL=f"http://{HOST}:{port}",
            GOVSIGN_HSM_PIN=TEST_PIN,
            GOVSIGN_LINT_WITH_PKILINT="false",
        )
        log("setting up govsign: init, agency, clients")
        setup = subprocess.run(
            [sys.executable, str(BENCH_DIR / "sign_setup.py"), str(work / "setup.json"), AGENCY],
            cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if setup.returncode != 0:
            raise BenchError(f"setup failed:\n{setup.stderr[-3000:]}")
        data = json.loads((work / "setup.json").read_text())
        server = processes.start(
            [str(GOVSIGN), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)],
            log_path=work / "govsign.log", cwd=work, env=env,
        )  # fmt: skip

        def ready() -> bool:
            connection = http.client.HTTPConnection(HOST, port, timeout=10)
            try:
                connection.request("GET", "/readyz")
                return connection.getresponse().status == 200
            finally:
                connection.close()

        wait_for("govsign serve", ready, server, work / "govsign.log", 60)
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        connection.request(
            "POST",
            "/api/v1/certificates",
            body=json.dumps({"profile": "organization", "subject": "CN=Con dấu đo hiệu năng,O=Cơ quan đo hiệu năng,C=VN",
                             "key_algorithm": "rsa2048", "agency_id": AGENCY}).encode(),
            headers={"Authorization": f"Bearer {data['ra_token']}", "Content-Type": "application/json"},
        )  # fmt: skip
        response = connection.getresponse()
        enrolled = json.loads(response.read())
        if response.status != 201:
            raise BenchError(f"enrolment failed: {enrolled}")
        credential = enrolled["serial"]
        certificate = x509.load_pem_x509_certificate(enrolled["certificate_pem"].encode())
        token = post(connection, "/csc/v2/auth/login", {}, data["signer_token"])["access_token"]
        connection.close()
        runs = [
            run_csc(port, token, credential, certificate, batch=1, clients=args.clients, seconds=args.duration,
                    server_pgid=server.pid),
            run_csc(port, token, credential, certificate, batch=100, clients=2, seconds=args.duration,
                    server_pgid=server.pid),
        ]  # fmt: skip
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    print("# bench/csc\n")
    print(
        f"{cores} cores; RSA-2048 keys in SoftHSM2; {args.duration:g} s per run; govsign serve --workers {args.workers}\n"
    )
    print("| run | signatures/s | signatures per CPU-second | CPU ms per signature | other processes (cores) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for run in (ceiling, *runs):
        print(
            f"| {run.label} | {run.per_second:.0f} | {run.per_cpu_second:.0f} | {1000 / run.per_cpu_second:.2f} | "
            f"{run.other_cpu / run.seconds:.2f} |"
        )
    one, hundred = runs
    ratio_100 = hundred.per_cpu_second / ceiling.per_cpu_second
    cost_1 = ceiling.per_cpu_second / one.per_cpu_second
    print()
    print(f"- batches of 100: {ratio_100:.0%} of the raw HSM rate per core (goal >= 80%): "
          f"{'met' if ratio_100 >= 0.8 else 'MISSED'}")  # fmt: skip
    print(f"- a batch of 1: {cost_1:.2f}x the raw cost per signature (goal <= 2x): "
          f"{'met' if cost_1 <= 2 else 'MISSED'}")  # fmt: skip
    print("\nA batch of 1 is two requests (authorize, then signHash), as a seal is authorized (SCAL 1).")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(str(exc))
        sys.exit(1)
