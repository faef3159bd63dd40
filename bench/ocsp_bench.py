"""OCSP benchmark: govsign against `openssl ocsp -index ... -multi N`, same certificates, same load.

Started by ``bench/ocsp`` with the project's venv Python. See ``bench/ocsp --help``.

What it does, all on 127.0.0.1, in a temp dir that is removed on exit (also on Ctrl-C):

1. ``govsign init`` (RSA-2048 root and issuing CA keys, an OCSP responder key of ``--responder-key``)
   on a fresh SoftHSM2 token + SQLite, issue N certificates from ec-p256 CSRs, revoke a few
   (bench/ocsp_setup.py);
2. ``govsign serve --workers W`` and wait for /readyz;
3. ``openssl ocsp`` responder over an index.txt of the same certificates, with the same issuing
   CA certificate (so the CertIDs match) and a *software* responder key of the same type + self-signed
   responder certificate (the HSM key is not extractable; the key type and signature algorithm
   SHA-256 signature algorithm are the same, and the load generator does not verify signatures);
4. check that every request of every scenario gets a real answer from both servers: successful,
   the expected good/revoked status (with the same revocation time and reason), a valid
   signature by a responder key of that type, the nonce echoed in (c), and for govsign (a)/(b) a
   pre-produced response (identical bytes twice);
5. for each scenario, for each server in turn: wrk warm-up, then a measured wrk run (same
   Lua script, connections, threads and duration), and the CPU time the server, wrk and every
   other process on the machine used (other processes disturb the numbers: a warning says so);
6. print the result as Markdown on stdout (progress goes to stderr), with the goal verdicts.

`openssl ocsp` 3.0 quirks handled here: with -multi its parent calls setpgid(0, 0), so it must
not be a session leader (children are started in a new process group instead); its parent
ignores SIGTERM while its children live (it is stopped with SIGKILL to the group); and a child
that accepts a connection closed without a request spins at 100% CPU forever, so wrk's address
probe is disabled in ocsp_wrk.lua, readiness is checked with a real request, and the responder
is restarted before every wrk run (wrk closes not-yet-used connections when it stops). Its
responses use HTTP/1.0 and close the connection, so wrk reconnects for every request to it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BENCH_DIR = Path(__file__).resolve().parent
PROJECT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
GOVSIGN = VENV_BIN / "govsign"
LUA = BENCH_DIR / "ocsp_wrk.lua"
HOST = "127.0.0.1"
NONCE_BYTES = 16
TEST_PIN = "bench-ocsp-1234"

SCENARIOS = {
    "a": "(a) GET, pre-produced",
    "b": "(b) POST, no nonce",
    "c": "(c) POST, nonce",
}
GOALS = {"a": 2.0, "b": 2.0, "c": 1.0}
P99_GOAL_MS = 10.0
NOISE_CORES = 0.15

OPENSSL_REASONS = {
    "key-compromise": "keyCompromise",
    "superseded": "superseded",
    "cessation-of-operation": "cessationOfOperation",
    "affiliation-changed": "affiliationChanged",
}
CRYPTOGRAPHY_REASONS = {
    "key-compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
}


def log(message: str) -> None:
    print(f"[bench/ocsp {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# -- processes ---------------------------------------------------------------------------------


class Processes:
    """Children started in their own process group (not a new session: `openssl ocsp -multi`
    calls setpgid(0, 0), which a session leader may not); stopped by process group id on exit."""

    def __init__(self) -> None:
        self.started: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []

    def start(
        self, argv: list[str], *, log_path: Path, stop_signal: signal.Signals = signal.SIGTERM, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        handle = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0, **kwargs
        )
        handle.close()
        self.started.append((proc, stop_signal))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        for entry in self.started:
            if entry[0] is proc:
                self.started.remove(entry)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, entry[1])
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                # Its children (which hold the listening socket) die asynchronously.
                deadline = time.monotonic() + 10
                while group_members(proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                return

    def stop_all(self) -> None:
        for proc, stop_signal in reversed(self.started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, stop_signal)
        deadline = time.monotonic() + 10
        for proc, _ in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group may still hold children (uvicorn workers, openssl -multi children).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.started.clear()


def _proc_stats() -> list[list[str]]:
    stats = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        stats.append(stat[stat.rindex(")") + 2 :].split())
    return stats


def group_members(group_id: int) -> int:
    """Live (not zombie) processes of a process group."""
    return sum(1 for fields in _proc_stats() if int(fields[2]) == group_id and fields[0] != "Z")


def group_cpu_seconds(group_id: int) -> float:
    """User+system CPU time of the live processes of one process group (a server and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for fields in _proc_stats():
        # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == group_id:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU seconds spent busy on all cores since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{what} was not ready after {timeout:.0f} s:\n{log_path.read_text(errors='replace')[-3000:]}")


def http_request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- data --------------------------------------------------------------------------------------


@dataclass
class BenchCertificate:
    serial: int
    certificate: x509.Certificate
    status: str
    reason: str | None
    revoked_at: dt.datetime | None
    plain_request: bytes = b""
    nonce_request: bytes = b""


@dataclass
class Server:
    name: str
    port: int
    get_prefix: str
    post_path: str
    proc: subprocess.Popen[bytes] | None = None
    restart: Callable[[], None] | None = None
    """Start afresh before each wrk run (openssl: see start_openssl)."""
    results: dict[str, dict[str, float]] = field(default_factory=dict)


def openssl_time(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    if moment.year < 2050:
        return moment.strftime("%y%m%d%H%M%SZ")
    return moment.strftime("%Y%m%d%H%M%SZ")


def openssl_serial(serial: int) -> str:
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


def write_openssl_side(work: Path, issuing: x509.Certificate, certs: list[BenchCertificate], key_type: str) -> None:
    lines = []
    for cert in certs:
        subject = "/" + "/".join(f"{attr.rfc4514_attribute_name}={attr.value}" for attr in cert.certificate.subject)
        expiry = openssl_time(cert.certificate.not_valid_after_utc)
        if cert.status == "revoked":
            assert cert.revoked_at is not None and cert.reason is not None
            revoked = f"{openssl_time(cert.revoked_at)},{OPENSSL_REASONS[cert.reason]}"
            lines.append(f"R\t{expiry}\t{revoked}\t{openssl_serial(cert.serial)}\tunknown\t{subject}")
        else:
            lines.append(f"V\t{expiry}\t\t{openssl_serial(cert.serial)}\tunknown\t{subject}")
    (work / "index.txt").write_text("\n".join(lines) + "\n")
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    (work / "issuing.pem").write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if key_type == "ec-p256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )  # the key type of govsign's responder
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, "openssl ocsp bench responder (software key)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    responder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "responder.pem").write_bytes(responder.public_bytes(serialization.Encoding.PEM))
    (work / "responder.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def build_requests(issuing: x509.Certificate, certs: list[BenchCertificate]) -> None:
    for cert in certs:
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert.certificate, issuing, hashes.SHA1())
        cert.plain_request = builder.build().public_bytes(serialization.Encoding.DER)
        nonce = os.urandom(NONCE_BYTES)
        cert.nonce_request = (
            builder.add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        if cert.nonce_request[-NONCE_BYTES:] != nonce:
            raise BenchError("the nonce is not the last bytes of the DER request; the Lua script relies on it")


# -- checks ------------------------------------------------------------------------------------


def scenario_request(server: Server, scenario: str, cert: BenchCertificate) -> tuple[str, str, bytes | None, bytes]:
    """(method, path, body, nonce) of one request; a fresh nonce for (c)."""
    if scenario == "a":
        return "GET", server.get_prefix + quote(base64.b64encode(cert.plain_request).decode(), safe=""), None, b""
    if scenario == "b":
        return "POST", server.post_path, cert.plain_request, b""
    nonce = os.urandom(NONCE_BYTES)
    return "POST", server.post_path, cert.nonce_request[:-NONCE_BYTES] + nonce, nonce


def check_response(server: Server, scenario: str, cert: BenchCertificate, issuing: x509.Certificate) -> bytes:
    method, path, body, nonce = scenario_request(server, scenario, cert)
    status, der = http_request(server.port, method, path, body)
    where = f"{server.name} {SCENARIOS[scenario]} serial {cert.serial:x}"
    if status != 200:
        raise BenchError(f"{where}: HTTP {status}: {der[:200]!r}")
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise BenchError(f"{where}: response status {response.response_status.name}")
    if response.serial_number != cert.serial:
        raise BenchError(f"{where}: answered for serial {response.serial_number:x}")
    expected = ocsp.OCSPCertStatus.REVOKED if cert.status == "revoked" else ocsp.OCSPCertStatus.GOOD
    if response.certificate_status is not expected:
        raise BenchError(f"{where}: status {response.certificate_status.name}, expected {expected.name}")
    if expected is ocsp.OCSPCertStatus.REVOKED:
        assert cert.revoked_at is not None and cert.reason is not None
        if response.revocation_time_utc != cert.revoked_at.replace(microsecond=0):
            raise BenchError(f"{where}: revocation time {response.revocation_time_utc}, expected {cert.revoked_at}")
        if response.revocation_reason is not CRYPTOGRAPHY_REASONS[cert.reason]:
            raise BenchError(f"{where}: revocation reason {response.revocation_reason}, expected {cert.reason}")
    if not response.certificates:
        raise BenchError(f"{where}: no responder certificate in the response")
    signer = response.certificates[0]
    key = signer.public_key()
    if not isinstance(response.signature_hash_algorithm, hashes.SHA256):
        raise BenchError(f"{where}: the response is not signed with SHA-256")
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    elif isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
        key.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
        )
    else:
        raise BenchError(f"{where}: the responder key is neither RSA-2048 nor EC P-256")
    if server.name == "govsign":
        signer.verify_directly_issued_by(issuing)
    if scenario == "c":
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed != nonce:
            raise BenchError(f"{where}: the nonce was not echoed")
    return der


def check_server(
    server: Server, scenarios: list[str], certs: list[BenchCertificate], issuing: x509.Certificate
) -> None:
    for scenario in scenarios:
        for cert in certs:
            first = check_response(server, scenario, cert, issuing)
            if server.name == "govsign" and scenario in ("a", "b"):
                again = check_response(server, scenario, cert, issuing)
                if again != first:
                    raise BenchError(
                        f"govsign {SCENARIOS[scenario]} serial {cert.serial:x}: the response was signed live, "
                        "not pre-produced (two requests got different responses)"
                    )


# -- load --------------------------------------------------------------------------------------


def wrk_files(work: Path, server: Server, certs: list[BenchCertificate]) -> dict[str, tuple[str, Path]]:
    files = {}
    get_file = work / f"wrk-{server.name}-get.txt"
    get_file.write_text(
        "".join(server.get_prefix + quote(base64.b64encode(c.plain_request).decode(), safe="") + "\n" for c in certs)
    )
    files["a"] = ("get", get_file)
    post_file = work / "wrk-post.txt"
    post_file.write_text("".join(c.plain_request.hex() + "\n" for c in certs))
    files["b"] = ("post", post_file)
    nonce_file = work / "wrk-nonce.txt"
    nonce_file.write_text("".join(c.nonce_request.hex() + "\n" for c in certs))
    files["c"] = ("nonce", nonce_file)
    return files


def run_wrk(
    server: Server, mode: str, items: Path, *, duration: float, connections: int, threads: int
) -> dict[str, float]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        f"http://{HOST}:{server.port}",
        "--",
        mode,
        str(items),
        server.post_path,
    ]
    if server.restart is not None:
        server.restart()
    assert server.proc is not None
    members_before = group_members(server.proc.pid)
    cpu_before = group_cpu_seconds(server.proc.pid)
    busy_before = machine_busy_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk against {server.name} did not finish in time") from None
    finally:
        if proc.poll() is None:  # timed out or interrupted
            proc.kill()
            proc.wait()
    cpu = group_cpu_seconds(server.proc.pid) - cpu_before
    busy = machine_busy_seconds() - busy_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    # (openssl -multi children may die of SIGPIPE when wrk stops and be respawned: not checked.)
    if server.restart is None and (group_members(server.proc.pid) != members_before or server.proc.poll() is not None):
        raise BenchError(
            f"{server.name}: a server process died or was restarted during the run "
            f"({members_before} processes before, {group_members(server.proc.pid)} after); its CPU time is lost"
        )
    text = output.decode(errors="replace")
    match = re.search(r"^WRKJSON (\{.*\})$", text, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise BenchError(f"wrk failed (exit {proc.returncode}):\n{text}")
    data = json.loads(match.group(1))
    requests = data["requests"]
    seconds = data["duration_us"] / 1e6
    errors = {k.removeprefix("err_"): v for k, v in data.items() if k.startswith("err_") and v}
    return {
        "rps": requests / seconds,
        "requests": requests,
        "p50_ms": data["p50_us"] / 1000,
        "p90_ms": data["p90_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
        "cpu_ms_per_request": 1000 * cpu / requests if requests else float("nan"),
        "server_cores": cpu / seconds,
        "wrk_cores": wrk_cpu / seconds,
        "other_cores": max(0.0, busy - cpu - wrk_cpu) / seconds,
        "errors": errors,  # type: ignore[dict-item]
    }


# -- report ------------------------------------------------------------------------------------


def report(servers: dict[str, Server], scenarios: list[str], args: argparse.Namespace) -> str:
    govsign, openssl = servers["govsign"], servers["openssl"]
    key_name = "EC P-256" if args.responder_key == "ec-p256" else "RSA-2048"
    header = (
        "| scenario | govsign req/s | p50 ms | p99 ms | openssl req/s | p50 ms | p99 ms | govsign / openssl | goal |"
    )
    lines = [
        f"OCSP benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores "
        f"(`bench/ocsp`)",
        "",
        header,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    verdicts = []
    for scenario in scenarios:
        g, o = govsign.results[scenario], openssl.results[scenario]
        ratio = g["rps"] / o["rps"] if o["rps"] else float("inf")
        goal = GOALS[scenario]
        ok_ratio = ratio >= goal
        ok_p99 = g["p99_ms"] < P99_GOAL_MS
        lines.append(
            f"| {SCENARIOS[scenario]} | {g['rps']:,.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} | "
            f"{o['rps']:,.0f} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {ratio:.2f}x | "
            f"≥ {goal:g}x: {'met' if ok_ratio else 'MISSED'}; p99 < {P99_GOAL_MS:g} ms: {'met' if ok_p99 else 'MISSED'} |"
        )
        verdicts.append(ok_ratio and ok_p99)
    lines.append("")
    lines.append(
        "| scenario | govsign CPU ms/request | openssl CPU ms/request | CPU-efficiency ratio | cores used by "
        "govsign / openssl | by wrk (govsign run / openssl run) | by other processes (govsign run / openssl run) |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario in scenarios:
        g, o = govsign.results[scenario], openssl.results[scenario]
        efficiency = o["cpu_ms_per_request"] / g["cpu_ms_per_request"] if g["cpu_ms_per_request"] else float("nan")
        lines.append(
            f"| {SCENARIOS[scenario]} | {g['cpu_ms_per_request']:.3f} | {o['cpu_ms_per_request']:.3f} | "
            f"{efficiency:.2f}x | "
            f"{g['server_cores']:.2f} / {o['server_cores']:.2f} | {g['wrk_cores']:.2f} / {o['wrk_cores']:.2f} | "
            f"{g['other_cores']:.2f} / {o['other_cores']:.2f} |"
        )
    errors = [
        f"{server.name} {SCENARIOS[s]}: {server.results[s]['errors']}"
        for server in (govsign, openssl)
        for s in scenarios
        if server.results[s]["errors"]
    ]
    cores = os.cpu_count()
    lines += [
        "",
        f"{len(verdicts) - sum(verdicts)} of {len(verdicts)} scenarios miss a goal."
        if not all(verdicts)
        else "All goals met.",
        "",
        f"Setup: {args.certs} certificates ({args.revoked} revoked) under an RSA-2048 issuing CA; requests rotate "
        f"over all of them (SHA-1 CertIDs, 16-byte nonces in (c)). wrk, {args.connections} connections, "
        f"{args.threads} threads, {args.duration:g} s per run after a {args.warmup:g} s warm-up, one server loaded at "
        f"a time. govsign: `govsign serve --workers {args.workers}` (uvicorn, uvloop, httptools), OCSP responder "
        f"key {key_name} in SoftHSM2, SQLite. openssl: `openssl ocsp -index index.txt "
        f"-multi {args.openssl_multi}` ({openssl_version()}), a software {key_name} responder key (the HSM key "
        "cannot be exported), signing every response live. Both sign with SHA-256 and include the responder "
        "certificate.",
        f"The load generator shares the machine's {cores} cores with the server under test; that is the same for "
        "both servers, so the ratios are fair, but absolute numbers are lower than with a separate client machine. "
        "CPU ms/request is the server's own CPU time (all its processes) divided by the requests answered; the "
        "CPU-efficiency ratio (openssl's CPU ms/request over govsign's) is what the req/s ratio tends to when both "
        "are CPU-bound, and is less disturbed by other load on the machine. p50/p99 are wrk's, at saturation "
        "(closed loop: every connection sends its next request as soon as it has the answer).",
    ]
    if errors:
        lines.append("wrk reported errors: " + "; ".join(errors))
    noisy = [
        f"{server.name} {SCENARIOS[s]}"
        for server in (govsign, openssl)
        for s in scenarios
        if server.results[s]["other_cores"] > NOISE_CORES
    ]
    if noisy:
        lines.append(
            f"WARNING: other processes used more than {NOISE_CORES:g} cores during: {', '.join(noisy)}; "
            "those numbers are disturbed, run again on an idle machine."
        )
    return "\n".join(lines)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def openssl_version() -> str:
    return (
        subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False)
        .stdout.split(" (")[0]
        .strip()
    )


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ocsp",
        description="OCSP throughput and latency of govsign against `openssl ocsp -multi` (127.0.0.1 only).",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured wrk run (10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of the warm-up run before each (2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--certs", type=int, default=50, help="certificates issued (50)")
    parser.add_argument("--revoked", type=int, default=5, help="of which revoked (5)")
    parser.add_argument("--workers", type=int, default=2, help="govsign serve --workers (2)")
    parser.add_argument("--openssl-multi", type=int, default=2, help="openssl ocsp -multi (2)")
    parser.add_argument("--scenarios", default="abc", help="subset of abc (abc)")
    parser.add_argument("--only", choices=("govsign", "openssl"), help="load only this server (no ratios)")
    parser.add_argument(
        "--responder-key",
        choices=("rsa2048", "ec-p256"),
        default="rsa2048",
        help="responder key type, the same for govsign (in the HSM) and openssl (rsa2048, govsign's default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, index.txt, requests)")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args()
    if not set(args.scenarios) <= set(SCENARIOS) or not args.scenarios:
        parser.error("--scenarios takes letters out of abc")
    if not 1 <= args.revoked < args.certs:
        parser.error("--revoked must be at least 1 and less than --certs")
    return args


def main() -> int:
    args = parse_args()
    scenarios = [s for s in "abc" if s in args.scenarios]
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    if shutil.which("openssl") is None:
        raise BenchError("openssl is not installed")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (background job)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    processes = Processes()
    work = Path(tempfile.mkdtemp(prefix="govsign-bench-ocsp-"))
    started = time.monotonic()
    try:
        govsign_port, openssl_port = free_port(), free_port()
        while openssl_port == govsign_port:
            openssl_port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GOVSIGN_") and k not in ("SOFTHSM2_CONF", "VIRTUAL_ENV")
        }
        env.update(
            GOVSIGN_DATA_DIR=str(work / "data"),
            GOVSIGN_PUBLIC_BASE_URL=f"http://{HOST}:{govsign_port}",
            GOVSIGN_HSM_PIN=TEST_PIN,
        )

        log(f"setting up govsign in {work}: init, {args.certs} certificates, {args.revoked} revoked")
        setup_env = dict(env, GOVSIGN_LINT_WITH_PKILINT="false")  # linting is not what is measured
        setup = subprocess.run(
            [
                sys.executable,
                str(BENCH_DIR / "ocsp_setup.py"),
                str(work / "setup.json"),
                str(args.certs),
                str(args.revoked),
                args.responder_key,
            ],
            cwd=work,
            env=setup_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if setup.returncode != 0:
            raise BenchError(f"setup failed:\n{setup.stdout[-2000:]}\n{setup.stderr[-4000:]}")
        data = json.loads((work / "setup.json").read_text())
        issuing = x509.load_pem_x509_certificate(data["issuing_ca"]["certificate_pem"].encode())
        certs = [
            BenchCertificate(
                serial=int(c["serial"], 16),
                certificate=x509.load_pem_x509_certificate(c["pem"].encode()),
                status=c["status"],
                reason=c["reason"],
                revoked_at=dt.datetime.fromisoformat(c["revoked_at"].replace("Z", "+00:00"))
                if c.get("revoked_at")
                else None,
            )
            for c in data["certificates"]
        ]
        build_requests(issuing, certs)
        write_openssl_side(work, issuing, certs, args.responder_key)

        servers = {
            "govsign": Server("govsign", govsign_port, get_prefix="/pki/ocsp/", post_path="/pki/ocsp"),
            "openssl": Server("openssl", openssl_port, get_prefix="/", post_path="/"),
        }
        log(f"starting govsign serve --workers {args.workers} on port {govsign_port}")
        servers["govsign"].proc = processes.start(
            [str(GOVSIGN), "serve", "--host", HOST, "--port", str(govsign_port), "--workers", str(args.workers)],
            log_path=work / "govsign.log",
            cwd=work,
            env=env,
        )
        openssl_server = servers["openssl"]
        openssl_argv = [
            "openssl",
            "ocsp",
            "-index",
            "index.txt",
            "-port",
            str(openssl_port),
            "-rsigner",
            "responder.pem",
            "-rkey",
            "responder.key",
            "-CA",
            "issuing.pem",
            "-multi",
            str(args.openssl_multi),
            "-nmin",
            "60",
            "-ignore_err",
        ]

        def openssl_ready() -> bool:
            # A real request: an empty connection would leave a responder child spinning.
            status, _ = http_request(openssl_port, "POST", "/", certs[0].plain_request)
            return status == 200

        def start_openssl() -> None:
            """(Re)start `openssl ocsp`. It is restarted before every wrk run: when wrk stops, it
            closes connections it had opened but not yet written to, and each such empty
            connection leaves an openssl 3.0 responder child spinning at 100% CPU on read() = 0
            (it is neither respawned nor timed out), which would starve the next run."""
            if openssl_server.proc is not None:
                processes.stop(openssl_server.proc)
            for attempt in range(3):
                openssl_server.proc = processes.start(
                    openssl_argv,
                    log_path=work / "openssl.log",
                    stop_signal=signal.SIGKILL,  # its parent notes SIGTERM but keeps waiting for its children
                    cwd=work,
                    env=env,
                )
                try:
                    wait_for("openssl ocsp", openssl_ready, openssl_server.proc, work / "openssl.log", 30)
                    return
                except BenchError:
                    if attempt == 2:
                        raise
                    processes.stop(openssl_server.proc)
                    time.sleep(0.5)

        log(f"starting openssl ocsp -multi {args.openssl_multi} on port {openssl_port}")
        start_openssl()
        openssl_server.restart = start_openssl

        def govsign_ready() -> bool:
            status, _ = http_request(govsign_port, "GET", "/readyz")
            return status == 200

        wait_for("govsign serve", govsign_ready, servers["govsign"].proc, work / "govsign.log", 60)
        # /readyz answered from one worker; a few more requests so that every worker is up.
        for _ in range(4 * args.workers):
            govsign_ready()
        start_openssl()  # the readiness checks are real requests, but start from a clean slate

        log("checking that every request gets a real answer from both servers")
        for server in servers.values():
            check_server(server, scenarios, certs, issuing)

        loaded = [servers[args.only]] if args.only else list(servers.values())
        files = {server.name: wrk_files(work, server, certs) for server in loaded}
        for scenario in scenarios:
            for server in loaded:
                mode, items = files[server.name][scenario]
                common = {"connections": args.connections, "threads": args.threads}
                if args.warmup > 0:
                    run_wrk(server, mode, items, duration=args.warmup, **common)  # type: ignore[arg-type]
                log(f"{SCENARIOS[scenario]}: loading {server.name} for {args.duration:g} s")
                result = run_wrk(server, mode, items, duration=args.duration, **common)  # type: ignore[arg-type]
                server.results[scenario] = result
                log(
                    f"  {server.name}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                    f"p99 {result['p99_ms']:.2f} ms, {result['cpu_ms_per_request']:.3f} CPU ms/request, "
                    f"other processes {result['other_cores']:.2f} cores"
                    + (f", errors {result['errors']}" if result["errors"] else "")
                )
                if server.proc is not None and server.proc.poll() is not None:
                    log_file = work / f"{server.name}.log"
                    raise BenchError(f"{server.name} died under load:\n{log_file.read_text(errors='replace')[-3000:]}")

        log("checking the answers again after the load")
        start_openssl()
        for server in loaded:
            check_server(server, scenarios, certs[:5], issuing)

        if args.json:
            args.json.write_text(json.dumps({s.name: s.results for s in loaded}, indent=2))
        if args.only:
            for scenario in scenarios:
                r = servers[args.only].results[scenario]
                print(
                    f"{SCENARIOS[scenario]}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                )
        else:
            text = report(servers, scenarios, args)
            print()
            print(text)
        log(f"done in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        processes.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/ocsp: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/ocsp: interrupted; servers stopped and temp dir removed", file=sys.stderr)
        sys.exit(130)
