"""Verification benchmark: govsign's REST API against pyHanko's validator, measured in the same run.

Started by ``bench/verify`` with the project's venv Python. See ``bench/verify --help``.

What it does, all on 127.0.0.1, in a temp dir that is removed on exit (also on Ctrl-C):

1. ``govsign init`` (RSA-2048 root and issuing CA, the default service keys) on a fresh SoftHSM2
   token + SQLite, one agency, an RA officer, a signer and a verifier client
   (bench/verify_setup.py);
2. ``govsign serve --workers 1``; through the API the RA officer enrols an organization
   certificate (RSA-2048 key in the HSM), and the signer signs the two documents of the benchmark
   with it: a 1-page PDF at PAdES B-LT (signature time-stamp by govsign's TSA, and a DSS with the
   OCSP responses and CRLs of the signer's and the TSA's chains) and a 20 MB PDF (20 pages, each
   an uncompressed 1 MB image) at PAdES B-B;
3. checks: both verify ``valid`` through ``POST /api/v1/verifications`` at their level, the B-LT
   one on its embedded revocation data, the B-B one on govsign's own records;
4. a helper process opens govsign as ``serve`` does (the ASGI app and its lifespan: one HSM login)
   and checks the in-process contenders' answers once: pyHanko's ``validate_pdf_signature`` (the
   baseline: a fresh ``ValidationContext`` per document with the same trust anchors and
   intermediates and the same revocation data, no fetching, revocation mode ``hard-fail``),
   govsign's core ``govsign.validation.pdf.validate_pdf`` (the ceiling of the API path), the
   service ``Verifications.verify_pdf`` and the ASGI app without uvicorn;
5. the server is restarted (a fresh process), warmed up with three 1-page verifications, its peak
   RSS reset (``/proc/PID/clear_refs``) and the 20 MB file verified once: the peak RSS growth
   (VmHWM after minus VmRSS before, and sampled RSS) against the input size + 64 MiB;
6. ``--rounds`` rounds, per file: the API (closed loop, one keep-alive connection by default),
   pyHanko and the core in turn, so that a drift in the machine's speed lands on all of them;
   VmHWM is read again after the last round;
7. the server is stopped; the information figures (ASGI app and service in-process; for the
   1-page file also pyHanko in the other revocation mode and with one kept context, and the
   core with ``gc.freeze()``), then cProfile of the 1-page file through the ASGI app and of
   pyHanko, in the helper;
8. prints the result as Markdown on stdout (progress goes to stderr), with the goal verdicts.

Per core: operations per CPU-second of the contender itself: the server's process (utime+stime
from /proc, every thread) for the API; the helper's process CPU time for the in-process
contenders. The load generator's and other processes' CPU are reported separately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from ocsp_bench import BenchError, Processes, cpu_model, free_port, group_cpu_seconds, machine_busy_seconds, wait_for
from sign_bench import Measured, describe_problem, fmt, one_page_pdf, summarise_profile

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
GOVSIGN = VENV_BIN / "govsign"
HOST = "127.0.0.1"
TEST_PIN = "bench-verify-1234"
AGENCY = "bench"
NOISE_CORES = 0.15
MiB = 1024 * 1024
#: The memory goal: peak RSS growth below the input's size plus this.
MEMORY_ALLOWANCE = 64 * MiB
#: The throughput goal for the 1-page B-LT file: API per core / pyHanko in-process per core.
GOAL_RATIO = 1.0

FILES = {"lt": "1-page PDF, PAdES B-LT", "big": "20 MB PDF, PAdES B-B"}
LEVELS = {"lt": "PAdES-BASELINE-LT", "big": "PAdES-BASELINE-B"}


def log(message: str) -> None:
    print(f"[bench/verify {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- documents ---------------------------------------------------------------------------------


def big_pdf(target_bytes: int, pages: int = 20) -> bytes:
    """A PDF of about ``target_bytes``: ``pages`` pages, each one uncompressed RGB image of random
    pixels (the shape of a scanned document, without the compression a scanner would apply)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    writer = PdfFileWriter()
    side = int((target_bytes / pages / 3) ** 0.5)
    name = generic.pdf_name
    for _ in range(pages):
        image = generic.StreamObject(
            {
                name("/Type"): name("/XObject"),
                name("/Subtype"): name("/Image"),
                name("/Width"): generic.NumberObject(side),
                name("/Height"): generic.NumberObject(side),
                name("/ColorSpace"): name("/DeviceRGB"),
                name("/BitsPerComponent"): generic.NumberObject(8),
            },
            stream_data=os.urandom(side * side * 3),
        )
        content = generic.StreamObject(stream_data=b"q 595 0 0 842 0 0 cm /Im0 Do Q")
        resources = generic.DictionaryObject(
            {name("/XObject"): generic.DictionaryObject({name("/Im0"): writer.add_object(image)})}
        )
        page = PageObject(
            contents=writer.add_object(content),
            media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
            resources=resources,
        )
        writer.insert_page(page)
    buffer = BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# -- the server process and its memory ----------------------------------------------------------


def group_pids(group_id: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == group_id:
            pids.append(int(entry))
    return pids


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field_name}")


def server_pid(group_id: int) -> int:
    """The process that serves: with ``--workers 1`` uvicorn serves in the process it was started
    in; should there be several, the one with the largest RSS (the worker)."""
    pids = group_pids(group_id)
    if not pids:
        raise BenchError("the govsign server process is gone")
    return max(pids, key=lambda pid: status_kib(pid, "VmRSS"))


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs "5"); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kib(pid, "VmHWM") <= status_kib(pid, "VmRSS") + 64


class RSSSampler:
    """Samples a process's VmRSS every few milliseconds on a thread; ``peak`` in KiB."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            except (OSError, BenchError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- HTTP --------------------------------------------------------------------------------------


def http_post(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 120) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Verification:
    """One POST /api/v1/verifications target."""

    port: int
    body: bytes
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/pdf"}

    def ok(self, status: int, data: bytes) -> bool:
        return status == 201 and b'"conclusion":"valid"' in data


def run_http(target: Verification, server_group: int, *, concurrency: int, duration: float, label: str) -> Measured:
    """Closed loop: every thread keeps one keep-alive connection and sends its next request as
    soon as it has read the previous answer (as bench/sign, but a verification answers 201)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    deadline = 0.0
    path, headers = "/api/v1/verifications", target.headers

    def worker(index: int) -> None:
        mine = latencies[index]
        connection = http.client.HTTPConnection(HOST, target.port, timeout=120)
        barrier.wait()
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    connection.request("POST", path, body=target.body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors[type(exc).__name__] += 1
                    connection.close()
                    connection = http.client.HTTPConnection(HOST, target.port, timeout=120)
                    continue
                elapsed = time.perf_counter() - started
                if not target.ok(response.status, data):
                    with lock:
                        errors[f"HTTP {response.status}: {describe_problem(data)}"] += 1
                else:
                    mine.append(elapsed)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = group_cpu_seconds(server_group)
    busy_before = machine_busy_seconds()
    self_before = time.process_time()
    started = time.perf_counter()
    deadline = started + duration
    barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = group_cpu_seconds(server_group) - cpu_before
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


def check_report(data: bytes, what: str, level: str) -> dict[str, Any]:
    report = json.loads(data)
    signatures = report.get("signatures") or []
    if report.get("conclusion") != "valid" or len(signatures) != 1:
        raise BenchError(f"{what}: conclusion {report.get('conclusion')!r}: {json.dumps(report)[:3000]}")
    if signatures[0]["level"] != level:
        raise BenchError(f"{what}: level {signatures[0]['level']}, expected {level}")
    return report


# -- in-process contenders: a helper process with the server's settings ---------------------------
#
# The helper opens govsign as the server does (the ASGI app and its lifespan, so one HSM login),
# and answers the driver's commands, one JSON object a line on stdin, replies on a pipe: so the
# driver can interleave the API runs with the in-process runs (rounds), which keeps a drift in the
# machine's speed (other tenants of the VM) from landing on one contender only.


def measured_raw(
    one: Callable[[], object], seconds: float, label: str, warmup: int, *, freeze: bool = False
) -> dict[str, Any]:
    """One thread, ``one()`` in a loop for ``seconds`` after ``warmup`` calls; the CPU is this
    process's (it does nothing else; the asgi contender's worker thread is counted too), and the
    time the garbage collector took is counted apart. ``freeze``: the objects alive before the
    loop (the imports, the app, the services) are moved out of the collector's reach first
    (``gc.freeze()``), as a server could do once after start-up."""
    import gc

    for _ in range(warmup):
        one()
    gc_seconds, gc_started = [0.0], [0.0]

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_seconds[0] += time.perf_counter() - gc_started[0]

    if freeze:
        gc.collect()
        gc.freeze()
    gc.callbacks.append(on_gc)
    try:
        latencies: list[float] = []
        busy_before = machine_busy_seconds()
        cpu_before = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            one()
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        busy = machine_busy_seconds() - busy_before
    finally:
        gc.callbacks.remove(on_gc)
        if freeze:
            gc.unfreeze()
    return {
        "label": label,
        "ops": len(latencies),
        "seconds": elapsed,
        "latencies": latencies,
        "cpu": cpu,
        "loadgen_cpu": 0.0,
        "other_cpu": max(0.0, busy - cpu),
        "errors": {},
        "gc_seconds": gc_seconds[0],
    }


class ASGIClient:
    """Drives the govsign ASGI app in this process, without uvicorn or a socket: the lifespan
    (which opens the services as ``serve`` does) on an event loop of its own, and one request at
    a time with the body delivered in 64 KiB chunks, as uvicorn hands it over."""

    def __init__(self, app: Any) -> None:
        import asyncio

        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.state: dict[str, Any] = {}

        async def lifespan() -> None:
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
            await app(scope, self._lifespan_in.get, self._lifespan_out.put)

        self._task = self.loop.create_task(lifespan())
        self._signal("startup")

    def _signal(self, what: str) -> None:
        async def roundtrip() -> dict[str, Any]:
            await self._lifespan_in.put({"type": f"lifespan.{what}"})
            return await self._lifespan_out.get()

        answer = self.loop.run_until_complete(roundtrip())
        if answer["type"] != f"lifespan.{what}.complete":
            raise BenchError(f"the app's lifespan {what} failed: {answer}")

    def close(self) -> None:
        self._signal("shutdown")
        self.loop.run_until_complete(self._task)
        self.loop.close()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
        pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
        pending.reverse()
        status, out = 0, []

        async def receive() -> dict[str, Any]:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw_headers += [(b"host", f"{HOST}:80".encode()), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": (HOST, 50000),
            "server": (HOST, 80),
            "state": dict(self.state),
        }
        await self.app(scope, receive, send)
        return status, b"".join(out)

    def verify(self, body: bytes, token: str) -> bytes:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"}
        status, data = self.loop.run_until_complete(self.post("/api/v1/verifications", body, headers))
        if status != 201 or b'"conclusion":"valid"' not in data:
            raise BenchError(f"the in-process ASGI app answered {status}: {data[:1000]!r}")
        return data


def helper(work: Path, reply_fd: int, mode: str) -> None:
    """The in-process side: commands on stdin, one JSON reply a line on ``reply_fd``."""
    import asyncio
    import cProfile
    import pstats
    import traceback

    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    from govsign.api.app import create_app
    from govsign.audit.events import AuditContext
    from govsign.config import Settings
    from govsign.services.authorization import Requester
    from govsign.services.bootstrap import Services
    from govsign.services.documents import SpooledDocument
    from govsign.validation.evidence import own_status
    from govsign.validation.pdf import validate_pdf
    from govsign.validation.report import Indication

    replies = os.fdopen(reply_fd, "w", buffering=1)
    setup = json.loads((work / "setup.json").read_text())
    token = setup["verifier_token"]
    documents = {key: (work / f"{key}.pdf").read_bytes() for key in FILES}
    settings = Settings()
    client = ASGIClient(create_app(settings))
    try:
        services: Services = client.app.state.services
        principal = services.authentication.authenticate_token(token)
        assert principal is not None
        context = AuditContext(client_id=principal.client_id, agency_id=principal.agency_id, request_id="bench")
        requester = Requester.client(principal, context)
        verifications = services.verifications
        spool = Path(settings.data_dir) / "spool"
        policy = verifications.policy()  # what verify_pdf builds per request; once here, for the core

        # pyHanko's material, parsed once as a long-running validator would: the same anchors and
        # intermediates as govsign's policy, and for the B-B file the same revocation data as
        # govsign uses (our records' OCSP responses and CRLs for the chain; the file has no DSS).
        roots = [asn1_x509.Certificate.load(der) for der in policy.trust_anchors]
        intermediates = [asn1_x509.Certificate.load(der) for der in policy.intermediates]
        big_signature = PdfFileReader(BytesIO(documents["big"])).embedded_signatures[0]
        chain = [c.chosen for c in big_signature.signed_data["certificates"] if c.name == "certificate"]
        records = own_status(verifications.status, chain, policy)
        big_ocsps = [response for response, _ in records.ocsps]
        big_crls = [crl for crl, _ in records.crls]

        def pyhanko_context(key: str, reader: PdfFileReader, revocation_mode: str) -> ValidationContext:
            kwargs: dict[str, Any] = {"trust_roots": roots, "allow_fetching": False, "revocation_mode": revocation_mode}
            if key == "lt":  # the file's DSS: its certificates, OCSP responses and CRLs
                return DocumentSecurityStore.read_dss(reader).as_validation_context(
                    {**kwargs, "other_certs": intermediates}
                )
            return ValidationContext(**kwargs, other_certs=intermediates, ocsps=big_ocsps, crls=big_crls)

        shared_contexts: dict[tuple[str, str], ValidationContext] = {}

        def pyhanko_validation(key: str, revocation_mode: str, shared: bool = False) -> Any:
            reader = PdfFileReader(BytesIO(documents[key]))
            signature = reader.embedded_signatures[0]
            if not shared:
                context = pyhanko_context(key, reader, revocation_mode)
            else:
                if (key, revocation_mode) not in shared_contexts:
                    shared_contexts[key, revocation_mode] = pyhanko_context(key, reader, revocation_mode)
                context = shared_contexts[key, revocation_mode]
            return validate_pdf_signature(signature, signer_validation_context=context)

        def core(key: str) -> Any:
            now = dt.datetime.now(dt.UTC)
            return validate_pdf(BytesIO(documents[key]), policy, now=now, status=verifications.status)

        def service(key: str) -> Any:
            # As the route receives the body: in memory up to 1 MiB, else a private spool file,
            # hashed (SHA-256) on the way; then the report is stored and audited.
            body = documents[key]
            document = SpooledDocument.receive(spool)
            try:
                hasher = hashlib.sha256()
                for offset in range(0, len(body), 65536):
                    chunk = body[offset : offset + 65536]
                    hasher.update(chunk)
                    document.write(chunk)
                document.close()
                document.remember("sha256", hasher.digest())
                return verifications.verify_pdf(document, requester)
            finally:
                document.discard()

        other_mode = "require" if mode == "hard-fail" else "hard-fail"
        contenders: dict[str, tuple[str, Callable[[str], object]]] = {
            "pyhanko": (
                f"pyHanko `validate_pdf_signature`, revocation mode `{mode}`",
                lambda k: pyhanko_validation(k, mode),
            ),
            "pyhanko-other": (
                f"pyHanko, revocation mode `{other_mode}` (information)",
                lambda k: pyhanko_validation(k, other_mode),
            ),
            "pyhanko-shared": (
                f"pyHanko, `{mode}`, one `ValidationContext` kept for every validation (information)",
                lambda k: pyhanko_validation(k, mode, shared=True),
            ),
            "core": ("govsign core `validation.pdf.validate_pdf` in-process (the ceiling)", core),
            "core-frozen": ("govsign core, the start-up heap frozen with `gc.freeze()` (information)", core),
            "service": ("govsign service `Verifications.verify_pdf` in-process (information)", service),
            "asgi": (
                "govsign ASGI app in-process, no uvicorn, no socket (information)",
                lambda k: client.verify(documents[k], token),
            ),
        }

        def check() -> dict[str, Any]:
            """Every in-process contender's answer, once, before anything is measured."""
            for key in FILES:
                for revocation_mode in (mode, other_mode):
                    status = pyhanko_validation(key, revocation_mode)
                    coverage_ok = key == "lt" or status.coverage is SignatureCoverageLevel.ENTIRE_FILE
                    tst = status.timestamp_validity
                    timestamp_ok = key != "lt" or (tst is not None and tst.intact and tst.valid and tst.trusted)
                    if not (status.bottom_line and coverage_ok and timestamp_ok):
                        raise BenchError(
                            f"pyHanko ({revocation_mode}) does not validate {FILES[key]}: {status.summary()}"
                        )
                validated = core(key)
                if [s.indication for s in validated.signatures] != [Indication.TOTAL_PASSED]:
                    raise BenchError(f"govsign's core does not pass the {FILES[key]}: {validated.signatures}")
                stored = service(key)
                if stored.report.conclusion.value != "valid":
                    raise BenchError(f"Verifications.verify_pdf: the {FILES[key]} is {stored.report.conclusion.value}")
                client.verify(documents[key], token)
            return {"big_revocation": {"ocsps": len(big_ocsps), "crls": len(big_crls)}}

        async def inline(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        real_run = asyncio.run

        def nested_run(coroutine: Any, **_kwargs: Any) -> Any:
            """asyncio.run inside the running loop (what the worker thread would have done),
            on a loop of its own; the outer loop waits, as it would for the thread."""
            running = asyncio.events._get_running_loop()
            asyncio.events._set_running_loop(None)
            loop = asyncio.new_event_loop()
            try:
                return loop.run_until_complete(coroutine)
            finally:
                loop.close()
                asyncio.events._set_running_loop(running)

        def profile(name: str, seconds: float, plain: dict[str, Any]) -> dict[str, Any]:
            """cProfile of the 1-page file: govsign through the ASGI app, with what it hands to a
            worker thread (authentication, the verification) run inline on the loop's thread so
            that one profiler sees the whole request; or pyHanko."""
            real_to_thread = asyncio.to_thread
            if name == "govsign":
                asyncio.to_thread = inline  # type: ignore[assignment]
                asyncio.run = nested_run  # type: ignore[assignment]
                one: Callable[[], object] = lambda: client.verify(documents["lt"], token)  # noqa: E731
            else:
                one = lambda: pyhanko_validation("lt", mode)  # noqa: E731
            try:
                one()
                profiler = cProfile.Profile()
                profiled, started = 0, time.perf_counter()
                profiler.enable()
                while time.perf_counter() - started < seconds:
                    one()
                    profiled += 1
                profiler.disable()
            finally:
                asyncio.to_thread = real_to_thread  # type: ignore[assignment]
                asyncio.run = real_run  # type: ignore[assignment]
            stats = pstats.Stats(profiler)
            summary = summarise_profile(stats, plain, profiled, PROFILE_MARKS[name])
            summary["by_cumulative"] = top_by_cumulative(stats, 120)
            return summary

        replies.write(json.dumps({"ready": True}) + "\n")
        for line in sys.stdin:
            command = json.loads(line)
            try:
                if command["op"] == "quit":
                    break
                if command["op"] == "check":
                    reply: dict[str, Any] = check()
                elif command["op"] == "measure":
                    label, function = contenders[command["what"]]
                    key = command["key"]
                    reply = measured_raw(
                        functools.partial(function, key),
                        command["seconds"],
                        label,
                        command.get("warmup", 2),
                        freeze=command["what"].endswith("-frozen"),
                    )
                elif command["op"] == "profile":
                    reply = profile(command["what"], command["seconds"], command["plain"])
                else:
                    raise BenchError(f"unknown command {command}")
            except Exception as exc:  # the driver reports it
                reply = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-4000:]}"}
            replies.write(json.dumps(reply) + "\n")
    finally:
        client.close()


class Helper:
    """The driver's end of the helper process."""

    def __init__(self, work: Path, env: dict[str, str], mode: str) -> None:
        read_fd, write_fd = os.pipe()
        self.log_path = work / "helper.log"
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, str(Path(__file__).resolve()), "--helper", str(work)),
                    *("--reply-fd", str(write_fd), "--revocation-mode", mode),
                ],
                cwd=work,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                text=True,
            )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r")
        self._read("starting")

    def _read(self, what: str) -> dict[str, Any]:
        line = self.replies.readline()
        if not line:
            self.process.wait(timeout=10)
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise BenchError(f"the in-process helper exited ({what}, code {self.process.returncode}):\n{tail}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchError(f"the in-process helper failed ({what}): {reply['error']}")
        return reply

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read(str(command.get("op")))

    def measure(self, key: str, what: str, seconds: float, warmup: int = 2) -> tuple[Measured, float]:
        """The run, and the seconds the garbage collector took in it."""
        reply = self.ask(op="measure", key=key, what=what, seconds=seconds, warmup=warmup)
        gc_seconds = float(reply.pop("gc_seconds"))
        return Measured(**reply), gc_seconds

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.replies.close()


def top_by_cumulative(stats: Any, count: int) -> list[dict[str, Any]]:
    from sign_bench import short_function

    rows = [
        {"function": short_function(f, line, name), "calls": nc, "tottime": tt, "cumtime": ct}
        for (f, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items()
    ]
    return sorted(rows, key=lambda r: r["cumtime"], reverse=True)[:count]


#: Per profile, the functions whose cumulative time the summary names: (file suffix, function).
PROFILE_MARKS: dict[str, dict[str, tuple[str, str]]] = {
    "govsign": {
        "whole request through the ASGI app (bench ASGIClient.post)": ("bench/verify_bench.py", "post"),
        "authentication (api.deps.authenticated: token lookup)": ("govsign/api/deps.py", "authenticated"),
        "receiving the body (api.documents.spool_body)": ("govsign/api/documents.py", "spool_body"),
        "whole service call (Verifications.verify_pdf)": ("govsign/services/verifications.py", "verify_pdf"),
        "policy(): CA certificates read from the database, per request": (
            "govsign/services/verifications.py",
            "policy",
        ),
        "validation core (validation.pdf.validate_pdf)": ("govsign/validation/pdf.py", "validate_pdf"),
        "opening the PDF (pyHanko PdfFileReader)": ("pyhanko/pdf_utils/reader.py", "__init__"),
        "finding the signatures (reader.embedded_signatures, both lists)": (
            "pyhanko/pdf_utils/reader.py",
            "embedded_signatures",
        ),
        "the DSS read and parsed (_embedded_revocation)": ("govsign/validation/pdf.py", "_embedded_revocation"),
        "our records' answers (own_status: OCSP + CRL, DB)": ("govsign/validation/evidence.py", "own_status"),
        "of which OCSPService.answer": ("govsign/services/status.py", "answer"),
        "of which OwnCAStatus._our_cas (CA rows read and parsed)": ("govsign/services/verifications.py", "_our_cas"),
        "covers(): every certificate's status looked up": ("govsign/validation/evidence.py", "covers"),
        "engine settings (validation_spec: anchors parsed, OCSP containers)": (
            "govsign/validation/evidence.py",
            "validation_spec",
        ),
        "difference analysis (compute_integrity_info)": (
            "pyhanko/sign/validation/pdf_embedded.py",
            "compute_integrity_info",
        ),
        "pyHanko ades_with_time_validation (B-T/B-LT, no document time-stamp)": (
            "pyhanko/sign/validation/ades.py",
            "ades_with_time_validation",
        ),
        "pyHanko cms_basic_validation (signature + signer's path)": (
            "pyhanko/sign/validation/generic_cms.py",
            "cms_basic_validation",
        ),
        "path validation (certvalidator async_validate_path)": (
            "pyhanko_certvalidator/validate.py",
            "async_validate_path",
        ),
        "of which revocation checks (_check_revocation)": ("pyhanko_certvalidator/validate.py", "_check_revocation"),
        "judge(): our rules and the report of the signature": ("govsign/validation/engine.py", "judge"),
        "revocation_summary (per certificate, from the known data)": (
            "govsign/validation/evidence.py",
            "revocation_summary",
        ),
        "ETSI TS 119 102-2 XML (etsi_report)": ("govsign/validation/etsi.py", "etsi_report"),
        "report stored + audit event (_store)": ("govsign/services/verifications.py", "_store"),
        "report as JSON (StoredReport.as_json, each call)": ("govsign/services/verifications.py", "as_json"),
        "the JSON response rendered (JSONResponse.render)": ("starlette/responses.py", "render"),
    },
    "pyhanko": {
        "whole validation (reader, DSS, context, validate_pdf_signature)": (
            "bench/verify_bench.py",
            "pyhanko_validation",
        ),
        "opening the PDF (PdfFileReader)": ("pyhanko/pdf_utils/reader.py", "__init__"),
        "finding the signatures (reader.embedded_signatures)": ("pyhanko/pdf_utils/reader.py", "embedded_signatures"),
        "the DSS into a ValidationContext (as_validation_context)": (
            "pyhanko/sign/validation/dss.py",
            "as_validation_context",
        ),
        "validate_pdf_signature": ("pyhanko/sign/validation/__init__.py", "validate_pdf_signature"),
        "difference analysis (compute_integrity_info)": (
            "pyhanko/sign/validation/pdf_embedded.py",
            "compute_integrity_info",
        ),
        "signature time-stamp (collect_timing_info)": ("pyhanko/sign/validation/generic_cms.py", "collect_timing_info"),
        "cms_basic_validation (signature + signer's path)": (
            "pyhanko/sign/validation/generic_cms.py",
            "cms_basic_validation",
        ),
        "path validation (certvalidator async_validate_path)": (
            "pyhanko_certvalidator/validate.py",
            "async_validate_path",
        ),
        "of which revocation checks (_check_revocation)": ("pyhanko_certvalidator/validate.py", "_check_revocation"),
    },
}


# -- report ------------------------------------------------------------------------------------


def log_result(result: dict[str, Any]) -> None:
    errors = f", errors {result['errors']}" if result["errors"] else ""
    log(
        f"  {result['label']}: {result['ops_per_s']:,.1f} ops/s, p50 {result['p50_ms']:.2f} ms, "
        f"{result['cpu_ms_per_op']:.2f} CPU ms/op ({result['ops_per_cpu_s']:,.1f} per CPU-second), "
        f"other processes {result['other_cores']:.2f} cores" + errors
    )


def combine(runs: list[Measured]) -> Measured:
    """The rounds of one contender as one run."""
    errors: Counter[str] = Counter()
    for run in runs:
        errors.update(run.errors)
    return Measured(
        label=runs[0].label,
        ops=sum(r.ops for r in runs),
        seconds=sum(r.seconds for r in runs),
        latencies=[latency for r in runs for latency in r.latencies],
        cpu=sum(r.cpu for r in runs),
        loadgen_cpu=sum(r.loadgen_cpu for r in runs),
        other_cpu=sum(r.other_cpu for r in runs),
        errors=dict(errors),
    )


def per_core(run: Measured) -> float:
    return run.ops / run.cpu if run.cpu else float("nan")


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float:
    if not a or not b or not b["ops_per_cpu_s"] or b["ops_per_cpu_s"] != b["ops_per_cpu_s"]:
        return float("nan")
    return float(a["ops_per_cpu_s"] / b["ops_per_cpu_s"])


ORDER = ("api", "asgi", "service", "core", "core-frozen", "pyhanko", "pyhanko-other", "pyhanko-shared")


def file_report(key: str, rows: dict[str, dict[str, Any]], size: int, round_ratios: list[float]) -> list[str]:
    lines = [
        f"### {FILES[key]} ({size:,} bytes)",
        "",
        "| contender | ops/s | p50 ms | p99 ms | own CPU ms/op | of which GC ms/op | ops per CPU-second (per core) "
        "| cores used |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ORDER:
        if name in rows:
            result = rows[name]
            lines.append(
                f"| {result['label']} | {fmt(result['ops_per_s'])} | {fmt(result['p50_ms'], 2)} | "
                f"{fmt(result['p99_ms'], 2)} | {fmt(result['cpu_ms_per_op'], 2)} | "
                f"{fmt(result.get('gc_ms_per_op', float('nan')), 2)} | {fmt(result['ops_per_cpu_s'])} | "
                f"{fmt(result['cores'], 2)} |"
            )
    get = rows.get
    rounds = ", ".join(f"{value:.2f}x" for value in round_ratios)
    lines += [
        "",
        f"Per core: API / pyHanko = **{ratio(get('api'), get('pyhanko')):.2f}x** (rounds: {rounds}); "
        f"API / govsign core (the ceiling) = {ratio(get('api'), get('core')):.2f}x; "
        f"govsign core / pyHanko = {ratio(get('core'), get('pyhanko')):.2f}x.",
    ]
    if "asgi" in rows and "service" in rows:
        lines.append(
            "Where the API's CPU goes (per-core ratios of neighbouring rows; 1.00x = free): uvicorn + socket "
            f"(API / ASGI in-process) {ratio(get('api'), get('asgi')):.2f}x; FastAPI, authentication, body and JSON "
            f"response (ASGI / service) {ratio(get('asgi'), get('service')):.2f}x; storing and auditing the report "
            f"(service / core) {ratio(get('service'), get('core')):.2f}x."
        )
    if "core-frozen" in rows:
        lines.append(
            "govsign core with the start-up heap frozen (`gc.freeze()`, so that full collections stop walking the "
            f"imported modules and the app) / as it runs now: {ratio(get('core-frozen'), get('core')):.2f}x."
        )
    if "pyhanko-shared" in rows:
        lines.append(
            "pyHanko with one `ValidationContext` kept for every validation (its caches of validated paths and "
            f"revocation answers live on between documents) / with a fresh one: "
            f"{ratio(get('pyhanko-shared'), get('pyhanko')):.2f}x."
        )
    for result in rows.values():
        if result["errors"]:
            failed = ", ".join(f"{count} x {kind}" for kind, count in result["errors"].items())
            lines.append(f"FAILED requests of {result['label']} (not counted): {failed}.")
    return lines


def memory_report(memory: dict[str, Any], size: int) -> tuple[list[str], bool]:
    budget = size + MEMORY_ALLOWANCE
    worst = max(memory["first_growth"], memory["run_growth"], memory["first_sampled"], memory["run_sampled"])
    verdict = worst < budget
    how = (
        "VmHWM after minus VmRSS before; VmHWM reset to VmRSS first (`/proc/PID/clear_refs`)"
        if memory["reset"]
        else "VmHWM after minus VmRSS before; VmHWM could not be reset, so it is the peak since start: an upper bound"
    )
    lines = [
        f"### Server memory while verifying the {FILES['big']} ({size / MiB:.1f} MiB)",
        "",
        "| server process (`govsign serve --workers 1`, fresh start) | MiB |",
        "| --- | ---: |",
        f"| RSS after start and {memory['warmup']} 1-page verifications (before) | {memory['rss_before'] / MiB:.1f} |",
        f"| peak growth, first 20 MB verification ({how}) | {memory['first_growth'] / MiB:.1f} |",
        f"| peak growth, first 20 MB verification, RSS sampled every 2 ms | {memory['first_sampled'] / MiB:.1f} |",
        f"| peak growth over every API run after it ({memory['big_ops']} more 20 MB verifications on one connection, "
        f"{memory['lt_ops']} 1-page ones on {memory['concurrency']}) | {memory['run_growth'] / MiB:.1f} |",
        f"| the same, RSS sampled during the 20 MB runs | {memory['run_sampled'] / MiB:.1f} |",
        f"| RSS after the runs (retained) | {memory['rss_after'] / MiB:.1f} |",
        f"| budget: input + 64 MiB | {budget / MiB:.1f} |",
        "",
        f"Peak RSS growth {worst / MiB:.1f} MiB against input + 64 MiB = {budget / MiB:.1f} MiB: "
        f"**{'PASS' if verdict else 'MISS'}** ({worst / size:.2f}x the input's size).",
    ]
    return lines, verdict


def profile_report(name: str, data: dict[str, Any], top: int) -> list[str]:
    profiled = data["profiled_ops"] or 1
    per_op = 1000 / profiled
    total = data["total"]
    plain = data["plain"]
    titles = {
        "govsign": "govsign, `POST /api/v1/verifications` through the ASGI app in-process (the server side of a "
        "request without uvicorn; its worker-thread calls run inline so that one profiler sees them)",
        "pyhanko": "pyHanko in-process (`PdfFileReader`, the DSS into a `ValidationContext`, `validate_pdf_signature`)",
    }
    lines = [
        f"### Profile: {titles[name]}; 1-page B-LT file; cProfile, {profiled} operations",
        "",
        f"Without the profiler: {1000 * plain['cpu'] / max(1, plain['ops']):.2f} CPU ms per operation. Under cProfile "
        f"everything is slower ({total * per_op:.1f} ms/op; pyHanko's PDF tokenizer most, it makes many small "
        "calls); the shares are what matters.",
        "",
        "| part of the path | ms/op (profiled) | share |",
        "| --- | ---: | ---: |",
    ]
    for label, cumulative in data["marks"].items():
        lines.append(f"| {label} | {cumulative * per_op:.2f} | {100 * cumulative / total:.1f}% |")
    lines += ["", "Self time by package:", "", "| package | ms/op | share |", "| --- | ---: | ---: |"]
    for package, seconds in data["packages"][:10]:
        lines.append(f"| {package} | {seconds * per_op:.2f} | {100 * seconds / total:.1f}% |")
    chain = [row for row in data["by_cumulative"] if row["cumtime"] >= 0.97 * total]
    below = [row for row in data["by_cumulative"] if row["cumtime"] < 0.97 * total]
    lines += [
        "",
        f"Top {top} functions by cumulative time (leaving out the {len(chain)} frames that carry at least 97% of the "
        f"time: the call chain down to `{chain[-1]['function'] if chain else '-'}`):",
        "",
        "| function | calls/op | cumulative ms/op | self ms/op |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in below[:top]:
        lines.append(
            f"| `{row['function']}` | {row['calls'] / profiled:.1f} | {row['cumtime'] * per_op:.2f} | "
            f"{row['tottime'] * per_op:.2f} |"
        )
    lines += ["", "Top 15 functions by self time:", "", "| function | calls/op | self ms/op |", "| --- | ---: | ---: |"]
    for row in data["by_self"][:15]:
        lines.append(f"| `{row['function']}` | {row['calls'] / profiled:.1f} | {row['tottime'] * per_op:.2f} |")
    return lines


def tree_state() -> str:
    """The commit measured and the files under src/ that differ from it (read-only git calls: the
    tree is shared, and the figures are of whatever it holds when the benchmark runs)."""
    root = BENCH_DIR.parent
    try:
        head = subprocess.run(
            ["git", "--no-optional-locks", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    changed = sorted(line[3:] for line in status)
    if not changed:
        return f"`{head}`, src/ unchanged"
    return f"`{head}` with uncommitted changes in {len(changed)} file(s) under src/: " + ", ".join(changed)


def report(
    rows: dict[str, dict[str, dict[str, Any]]],
    round_ratios: dict[str, list[float]],
    memory: dict[str, Any],
    sizes: dict[str, int],
    checks: dict[str, Any],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"Verification benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores "
        "(`bench/verify`)",
        "",
        f"Tree measured: {checks['tree']}.",
        "",
    ]
    for key in FILES:
        lines += [*file_report(key, rows[key], sizes[key], round_ratios[key]), ""]
    verdicts: dict[str, bool] = {}
    lt_ratio = ratio(rows["lt"].get("api"), rows["lt"].get("pyhanko"))
    verdicts[f"1-page B-LT ≥ {GOAL_RATIO:g}x pyHanko per core ({lt_ratio:.2f}x)"] = lt_ratio >= GOAL_RATIO
    memory_lines, verdicts["20 MB: peak memory < input + 64 MiB"] = memory_report(memory, sizes["big"])
    lines += [*memory_lines, ""]
    lines += [
        "| file / contender | load generator cores | other processes' cores | errors |",
        "| --- | ---: | ---: | --- |",
    ]
    noisy = []
    for key, contenders in rows.items():
        for name in ORDER:
            if name not in contenders:
                continue
            result = contenders[name]
            errors = ", ".join(f"{k}: {v}" for k, v in result["errors"].items()) or "none"
            lines.append(
                f"| {key} / {result['label']} | {fmt(result['loadgen_cores'], 2)} | {fmt(result['other_cores'], 2)} "
                f"| {errors} |"
            )
            if result["other_cores"] > NOISE_CORES:
                noisy.append(f"{key} / {result['label']}")
    lines.append("")
    missed = [name for name, ok in verdicts.items() if not ok]
    lines.append(
        f"{len(missed)} of {len(verdicts)} goals missed: {'; '.join(missed)}."
        if missed
        else f"All {len(verdicts)} goals met: {'; '.join(verdicts)}."
    )
    lines += [
        "",
        f"Setup: govsign `serve --workers 1` (uvicorn, uvloop + httptools), SQLite, SoftHSM2; the signer an "
        f"organization certificate ({checks['credential']}, RSA-2048 in the HSM) of an RSA-2048 issuing CA; "
        "both files signed through the API. Trust, for every contender: govsign's root as the anchor, its issuing CA "
        f"as an intermediate. Revocation data: the B-LT file's DSS (govsign's report names {checks['lt_sources']}); "
        f"for the B-B file govsign's own records (its report: {checks['big_sources']}), which pyHanko gets as the same "
        f"{checks['big_revocation']}; nothing fetched. API load: {args.concurrency} keep-alive `http.client` "
        "connection(s) for the 1-page file, one for the 20 MB file (its memory is measured), closed loop. "
        f"Goal figures: {args.rounds} rounds, each with the API, pyHanko and the core in turn for "
        f"{args.duration / args.rounds:g} s ({args.duration:g} s each in all; a {args.warmup:g} s API warm-up before "
        f"the first 1-page round); information figures {args.info_duration:g} s each. In-process: one thread of a "
        "helper process that opened govsign as `serve` does, documents in memory (the service figure receives them "
        f"as the route does). The idle server used {memory['idle_cores']:.3f} cores (background tasks), included "
        "in its figures.",
        "Per core: each contender's operations divided by the CPU time it used itself: the server process's "
        "utime+stime (all its threads, from /proc) for the API; the helper process's CPU time for in-process "
        "figures. The load generator runs on the same cores; its CPU is not charged to govsign. p50/p99 are per "
        "operation in the closed loop.",
    ]
    if noisy:
        lines.append(
            f"WARNING: other processes used more than {NOISE_CORES:g} cores during: {', '.join(noisy)}; "
            "raw rates are disturbed (per-core figures less so); run again on an idle machine."
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/verify",
        description="PDF verification through govsign's API (1-page PAdES B-LT, 20 MB PAdES B-B) against "
        "pyHanko's validator and govsign's validation core in-process, and the server's peak memory for the "
        "20 MB file (127.0.0.1 only).",
    )
    parser.add_argument(
        "--duration", type=float, default=12, help="seconds of each goal figure, split over the rounds (12)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds the goal figures alternate in (3)")
    parser.add_argument("--info-duration", type=float, default=4, help="seconds of each information figure (4)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of API warm-up before the 1-page runs (2)")
    parser.add_argument("--concurrency", type=int, default=1, help="keep-alive connections for the 1-page API run (1)")
    parser.add_argument("--big-mb", type=float, default=20, help="size of the large PDF in MiB (20)")
    parser.add_argument(
        "--revocation-mode",
        choices=("hard-fail", "require"),
        default="hard-fail",
        help="pyHanko's revocation mode for the baseline (hard-fail; the other is measured for information)",
    )
    parser.add_argument("--profile-seconds", type=float, default=8, help="seconds of each cProfile run, 0: none (8)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, documents, keys)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--helper", type=Path, metavar="WORKDIR", help=argparse.SUPPRESS)
    parser.add_argument("--reply-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.concurrency, args.rounds) < 1 or min(args.duration, args.info_duration, args.big_mb) <= 0:
        parser.error("--concurrency, --rounds, --duration, --info-duration and --big-mb must be positive")
    return args


def main() -> int:
    args = parse_args()
    if args.helper:
        helper(args.helper, args.reply_fd, args.revocation_mode)
        return 0

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    processes = Processes()
    work = Path(tempfile.mkdtemp(prefix="govsign-bench-verify-"))
    started = time.monotonic()
    in_process: Helper | None = None
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
            GOVSIGN_MAX_DOCUMENT_BYTES=str(max(64 * MiB, int(args.big_mb * MiB) + 4 * MiB)),
            TMPDIR=str(work / "tmp"),  # a temporary file anyone makes goes away with the dir
        )
        (work / "tmp").mkdir(mode=0o700)

        log(f"setting up govsign in {work}: init, agency, clients")
        setup = subprocess.run(
            [sys.executable, str(BENCH_DIR / "verify_setup.py"), str(work / "setup.json"), AGENCY],
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

        def start_server() -> int:
            server = processes.start(
                [str(GOVSIGN), "serve", "--host", HOST, "--port", str(port), "--workers", "1"],
                log_path=work / "govsign.log",
                cwd=work,
                env=env,
            )

            def ready() -> bool:
                connection = http.client.HTTPConnection(HOST, port, timeout=10)
                try:
                    connection.request("GET", "/readyz")
                    return connection.getresponse().status == 200
                finally:
                    connection.close()

            wait_for("govsign serve", ready, server, work / "govsign.log", 60)
            return server.pid

        log(f"starting govsign serve --workers 1 on port {port}")
        start_server()
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
        log(f"signing credential {credential}; signing the 1-page PDF (B-LT) and a {args.big_mb:g} MiB PDF (B-B)")
        sign_headers = {"Authorization": f"Bearer {data['signer_token']}", "Content-Type": "application/pdf"}
        documents: dict[str, bytes] = {}
        for key, unsigned, level in (
            ("lt", one_page_pdf(), "B-LT"),
            ("big", big_pdf(int(args.big_mb * MiB)), "B-B"),
        ):
            path = f"/api/v1/signatures/pdf?credential={credential}&level={level}"
            status, body = http_post(port, path, unsigned, sign_headers)
            if status != 200 or not body.startswith(b"%PDF-"):
                raise BenchError(f"signing the {FILES[key]} failed: HTTP {status}: {body[:2000]!r}")
            documents[key] = body
            (work / f"{key}.pdf").write_bytes(body)
        sizes = {key: len(body) for key, body in documents.items()}

        log("checking both files through the API")
        checks: dict[str, Any] = {"credential": credential, "tree": tree_state()}
        targets = {key: Verification(port, documents[key], data["verifier_token"]) for key in FILES}
        for key, target in targets.items():
            status, body = http_post(port, "/api/v1/verifications", target.body, target.headers)
            if status != 201:
                raise BenchError(f"verifying the {FILES[key]} failed: HTTP {status}: {body[:2000]!r}")
            verified = check_report(body, f"govsign API, {FILES[key]}", LEVELS[key])
            sources = [entry["source"] for entry in verified["signatures"][0]["revocation"]]
            checks[f"{key}_sources"] = ", ".join(sources)
            if key == "lt" and not all(str(s).startswith("embedded-") for s in sources):
                raise BenchError(f"the B-LT file's revocation data is not all embedded: {sources}")

        log("starting the in-process helper; checking pyHanko's, the core's and the service's answers")
        in_process = Helper(work, env, args.revocation_mode)
        revocation = in_process.ask(op="check")["big_revocation"]
        checks["big_revocation"] = f"{revocation['ocsps']} OCSP response(s) and {revocation['crls']} CRL(s)"

        log("restarting the server for the memory measurement (a fresh process)")
        processes.stop_all()
        group = start_server()
        warmup = 3
        for _ in range(warmup):
            status, body = http_post(port, "/api/v1/verifications", targets["lt"].body, targets["lt"].headers)
            check_report(body, "warm-up", LEVELS["lt"])
        idle_before, idle_started = group_cpu_seconds(group), time.perf_counter()
        time.sleep(2)
        idle_cores = (group_cpu_seconds(group) - idle_before) / (time.perf_counter() - idle_started)
        pid = server_pid(group)
        rss_before = status_kib(pid, "VmRSS") * 1024
        reset = reset_peak(pid)
        with RSSSampler(pid) as first_sampler:
            status, body = http_post(port, "/api/v1/verifications", targets["big"].body, targets["big"].headers)
        check_report(body, "the first 20 MB verification", LEVELS["big"])
        first_growth = status_kib(pid, "VmHWM") * 1024 - rss_before
        log(f"{FILES['big']}: first verification after a fresh start, peak RSS growth {first_growth / MiB:.1f} MiB")

        runs: dict[str, dict[str, list[Measured]]] = {key: {} for key in FILES}
        gc_seconds: dict[str, dict[str, float]] = {key: {} for key in FILES}
        round_ratios: dict[str, list[float]] = {key: [] for key in FILES}
        run_peak = 0
        slice_seconds = args.duration / args.rounds
        for number in range(args.rounds):
            for key in ("big", "lt"):
                if key == "lt" and number == 0 and args.warmup > 0:
                    run_http(targets[key], group, concurrency=args.concurrency, duration=args.warmup, label="warm-up")
                concurrency = 1 if key == "big" else args.concurrency
                log(f"round {number + 1}/{args.rounds}, {FILES[key]}: API, pyHanko, core, {slice_seconds:g} s each")
                order = ["api", "pyhanko", "core"]
                order = order[number % 3 :] + order[: number % 3]  # each goes first once in three rounds
                this_round: dict[str, Measured] = {}
                for name in order:
                    if name == "api":
                        with RSSSampler(pid) as sampler:
                            measured = run_http(
                                targets[key],
                                group,
                                concurrency=concurrency,
                                duration=slice_seconds,
                                label=f"govsign API, {concurrency} connection{'s' if concurrency > 1 else ''}",
                            )
                        if key == "big":
                            run_peak = max(run_peak, sampler.peak)
                    else:
                        measured, gc_time = in_process.measure(key, name, slice_seconds)
                        gc_seconds[key][name] = gc_seconds[key].get(name, 0.0) + gc_time
                    this_round[name] = measured
                    runs[key].setdefault(name, []).append(measured)
                    log_result(measured.summary())
                round_ratios[key].append(per_core(this_round["api"]) / per_core(this_round["pyhanko"]))
        if processes.started and processes.started[0][0].poll() is not None:
            raise BenchError(f"govsign died under load:\n{(work / 'govsign.log').read_text(errors='replace')[-3000:]}")
        memory = {
            "warmup": warmup,
            "reset": reset,
            "idle_cores": idle_cores,
            "concurrency": args.concurrency,
            "rss_before": rss_before,
            "first_growth": first_growth,
            "first_sampled": first_sampler.peak * 1024 - rss_before,
            "run_growth": status_kib(pid, "VmHWM") * 1024 - rss_before,
            "run_sampled": run_peak * 1024 - rss_before,
            "big_ops": sum(r.ops for r in runs["big"]["api"]),
            "lt_ops": sum(r.ops for r in runs["lt"]["api"]),
            "rss_after": status_kib(pid, "VmRSS") * 1024,
        }
        processes.stop_all()  # the information figures and the profiles run alone

        for key in FILES:
            names = ["asgi", "service"] + (["core-frozen", "pyhanko-other", "pyhanko-shared"] if key == "lt" else [])
            log(f"{FILES[key]}: information figures in-process ({', '.join(names)}), {args.info_duration:g} s each")
            for name in names:
                measured, gc_seconds[key][name] = in_process.measure(key, name, args.info_duration)
                runs[key][name] = [measured]
                log_result(measured.summary())
        rows = {key: {name: combine(measured).summary() for name, measured in runs[key].items()} for key in FILES}
        for key, contenders in gc_seconds.items():
            for name, seconds in contenders.items():
                rows[key][name]["gc_ms_per_op"] = 1000 * seconds / max(1, rows[key][name]["ops"])

        profiles: dict[str, Any] = {}
        if args.profile_seconds > 0:
            for name, plain in (("govsign", rows["lt"]["asgi"]), ("pyhanko", rows["lt"]["pyhanko"])):
                log(f"profiling {name} on the 1-page file under cProfile, {args.profile_seconds:g} s")
                profiles[name] = in_process.ask(
                    op="profile",
                    what=name,
                    seconds=args.profile_seconds,
                    plain={"ops": plain["ops"], "seconds": plain["seconds"], "cpu": plain["seconds"] * plain["cores"]},
                )
        in_process.close()
        in_process = None

        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "results": rows,
                        "round_ratios": round_ratios,
                        "memory": memory,
                        "sizes": sizes,
                        "checks": checks,
                        "profiles": profiles,
                        "cpu": cpu_model(),
                        "cores": os.cpu_count(),
                    },
                    indent=2,
                )
            )
        print()
        print(report(rows, round_ratios, memory, sizes, checks, args))
        for name, profile in profiles.items():
            print()
            print("\n".join(profile_report(name, profile, 30)))
        log(f"done in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if in_process is not None:
            in_process.close()
        processes.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/verify: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/verify: interrupted; server stopped and temp dir removed", file=sys.stderr)
        sys.exit(130)
