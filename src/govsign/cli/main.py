"""The admin CLI, ``govsign``. Errors are one sentence on stderr and a non-zero exit."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from typer.exceptions import TyperException

from govsign.cli import output
from govsign.config import load_settings
from govsign.errors import ErrorKind, GovsignError, InvalidInputError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateAuthority, HierarchySpec, IssuanceRequest
from govsign.pki.ports import CertificateStatus, RevocationReason
from govsign.pki.profiles import SUBSCRIBER_PROFILE_NAMES
from govsign.platform import Platform
from govsign.runtime import Runtime
from govsign.sole_control import SoleControl

T = TypeVar("T")

EXIT_CODES = {
    ErrorKind.INVALID_INPUT: 2,
    ErrorKind.POLICY_VIOLATION: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UNAVAILABLE: 5,
    ErrorKind.CONFIGURATION: 6,
    ErrorKind.INTERNAL: 70,
    ErrorKind.UNAUTHENTICATED: 7,
    ErrorKind.FORBIDDEN: 7,
    ErrorKind.RATE_LIMITED: 5,
}

app = typer.Typer(
    name="govsign",
    help="Administer the govsign certificate authority (keys in a PKCS#11 HSM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ca_app = typer.Typer(help="Certificate authorities.", no_args_is_help=True)
cert_app = typer.Typer(help="Subscriber certificates.", no_args_is_help=True)
hsm_app = typer.Typer(help="The HSM token.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
crl_app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies (cơ quan, tổ chức) and their sub-units.", no_args_is_help=True)
client_app = typer.Typer(help="API clients: the systems and officers that call the REST API.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")
app.add_typer(hsm_app, name="hsm")
app.add_typer(audit_app, name="audit")
app.add_typer(crl_app, name="crl")
app.add_typer(agency_app, name="agency")
app.add_typer(client_app, name="client")
credential_app = typer.Typer(
    help="Officials' signing credentials: second factors for sole control.", no_args_is_help=True
)
app.add_typer(credential_app, name="credential")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


class KeyChoice(StrEnum):
    rsa2048 = "rsa2048"
    rsa3072 = "rsa3072"
    rsa4096 = "rsa4096"
    ec_p256 = "ec-p256"
    ec_p384 = "ec-p384"


class ReasonChoice(StrEnum):
    unspecified = "unspecified"
    key_compromise = "key-compromise"
    ca_compromise = "ca-compromise"
    affiliation_changed = "affiliation-changed"
    superseded = "superseded"
    cessation_of_operation = "cessation-of-operation"
    certificate_hold = "certificate-hold"
    privilege_withdrawn = "privilege-withdrawn"


class StatusChoice(StrEnum):
    valid = "valid"
    revoked = "revoked"
    expired = "expired"
    on_hold = "on-hold"


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"operator:{user}"


@contextmanager
def opened(*, initialize: bool = False) -> Iterator[Runtime]:
    settings = load_settings()
    runtime = Runtime.open(settings, initialize=initialize)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr that shows what the HSM is doing (key generation takes a while)."""
    if not enabled or not output.stderr.is_terminal:
        yield lambda message: None
        return
    with output.stderr.status("Working…") as status:
        yield lambda message: status.update(message + "…")


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the {what} file {path}: {exc.strerror or exc}.") from None


# -- init ----------------------------------------------------------------------------------


@app.command()
def init(
    json_output: JsonOption = False,
    root_subject: Annotated[str | None, typer.Option(help="Root CA subject (RFC 4514).")] = None,
    root_key: Annotated[KeyChoice | None, typer.Option(help="Root CA key (default rsa4096).")] = None,
    root_validity_years: Annotated[int | None, typer.Option(help="Root CA validity (default 20).")] = None,
    issuing_subject: Annotated[str | None, typer.Option(help="Issuing CA subject (RFC 4514).")] = None,
    issuing_key: Annotated[KeyChoice | None, typer.Option(help="Issuing CA key (default rsa3072).")] = None,
    issuing_validity_years: Annotated[int | None, typer.Option(help="Issuing CA validity (default 10).")] = None,
    service_key: Annotated[
        KeyChoice | None,
        typer.Option(help="OCSP responder and TSA key (default: rsa2048 for the responder, ec-p256 for the TSA)."),
    ] = None,
) -> None:
    """Create the token (embedded default), the schema and, once, the CA hierarchy."""
    spec = HierarchySpec(
        root_subject=root_subject,
        root_algorithm=KeyAlgorithm(root_key.value) if root_key else None,
        root_validity_years=root_validity_years,
        issuing_subject=issuing_subject,
        issuing_algorithm=KeyAlgorithm(issuing_key.value) if issuing_key else None,
        issuing_validity_years=issuing_validity_years,
        service_algorithm=KeyAlgorithm(service_key.value) if service_key else None,
    )
    with opened(initialize=True) as runtime, progress_display(True) as progress:
        result = runtime.execute(
            lambda ca: ca.initialize(spec, actor=actor()),
            action="ca.init",
            actor=actor(),
            object_id="hierarchy",
            progress=progress,
        )
    if json_output:
        output.print_json(
            {
                "created": result.created,
                "root_ca": output.ca_json(result.root),
                "issuing_ca": output.ca_json(result.issuing),
                "ocsp_responder": {
                    "serial": result.ocsp_responder.serial_hex,
                    "not_after": output.iso_utc(result.ocsp_responder.not_after),
                },
                "tsa": {"serial": result.tsa.serial_hex, "not_after": output.iso_utc(result.tsa.not_after)},
            }
        )
        return
    if result.created:
        output.stdout.print("[green]Created[/] the CA hierarchy; all keys are in the HSM.")
    else:
        output.stdout.print("The CA hierarchy exists already; nothing was changed.")
    output.stdout.print(f"  Root CA     {result.root.id}: {result.root.subject} ({result.root.key.algorithm.value})")
    output.stdout.print(
        f"  Issuing CA  {result.issuing.id}: {result.issuing.subject} ({result.issuing.key.algorithm.value})"
    )
    output.stdout.print(
        f"  OCSP        serial {result.ocsp_responder.serial_hex}, valid until {result.ocsp_responder.not_after.date()}"
    )
    output.stdout.print(f"  TSA         serial {result.tsa.serial_hex}, valid until {result.tsa.not_after.date()}")


# -- ca ------------------------------------------------------------------------------------


@ca_app.command("list")
def ca_list(json_output: JsonOption = False) -> None:
    """List the certificate authorities."""
    with opened() as runtime:
        cas = runtime.execute(lambda ca: ca.list_cas(), action="ca.list", actor=actor(), object_id="-")
    if json_output:
        output.print_json([output.ca_json(ca) for ca in cas])
        return
    from rich.table import Table

    from govsign.clock import to_vietnam_time

    table = Table()
    for column in ("Id", "Role", "Subject", "Key", "Not after (+07:00)", "Serial"):
        table.add_column(column, overflow="fold")
    for ca in cas:
        table.add_row(
            ca.id, ca.role.value, ca.subject, ca.key.algorithm.value, to_vietnam_time(ca.not_after), ca.serial_hex
        )
    output.stdout.print(table)


# -- hsm -----------------------------------------------------------------------------------


@hsm_app.command("info")
def hsm_info(json_output: JsonOption = False) -> None:
    """Show the PKCS#11 module, the token and its private keys (never any key material)."""
    with opened() as runtime:
        info = runtime.keystore.token_info()
        keys = runtime.keystore.list_private_keys()
    if json_output:
        output.print_json(
            {
                "module": info.module_path,
                "library": info.library_description,
                "library_version": info.library_version,
                "token_label": info.token_label,
                "token_model": info.token_model,
                "token_manufacturer": info.token_manufacturer,
                "token_serial": info.token_serial,
                "private_keys": [
                    {
                        "label": key.ref.label,
                        "id": key.ref.key_id_hex,
                        "algorithm": key.ref.algorithm.value,
                        "sensitive": key.sensitive,
                        "extractable": key.extractable,
                        "never_extractable": key.never_extractable,
                        "local": key.local,
                    }
                    for key in keys
                ],
            }
        )
        return
    from rich.table import Table

    output.stdout.print(f"Module   {info.module_path} ({info.library_description} {info.library_version})")
    output.stdout.print(
        f"Token    {info.token_label} — {info.token_manufacturer} {info.token_model}, serial {info.token_serial}"
    )
    table = Table(title=f"{len(keys)} private keys")
    for column in ("Label", "Algorithm", "Sensitive", "Extractable", "Generated on token"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.ref.label, key.ref.algorithm.value, _yes(key.sensitive), _yes(key.extractable), _yes(key.local)
        )
    output.stdout.print(table)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


# -- cert ----------------------------------------------------------------------------------


@cert_app.command("issue")
def cert_issue(
    profile: Annotated[str, typer.Option(help=f"Profile: {', '.join(SUBSCRIBER_PROFILE_NAMES)}.")],
    subject: Annotated[
        str | None, typer.Option(help="Subject (RFC 4514), e.g. 'CN=Nguyễn Văn A,O=Bộ Tư pháp,C=VN'.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address for the subject alternative name.")] = None,
    csr: Annotated[Path | None, typer.Option(help="PKCS#10 request file (PEM or DER).")] = None,
    generate_key: Annotated[KeyChoice | None, typer.Option(help="Generate the key pair in the HSM.")] = None,
    validity_days: Annotated[int | None, typer.Option(help="Validity in days (at most 5 years).")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id (default: the active issuing CA).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a certificate from a CSR or with a key generated in the HSM."""
    if (csr is None) == (generate_key is None):
        raise InvalidInputError("Give exactly one of --csr FILE or --generate-key ALGORITHM.")
    if generate_key is not None and not subject:
        raise InvalidInputError("--subject is required with --generate-key.")
    request = IssuanceRequest(
        profile=profile,
        subject=subject,
        email=email,
        csr=read_file(csr, "CSR") if csr is not None else None,
        generate_key=KeyAlgorithm(generate_key.value) if generate_key else None,
        validity_days=validity_days,
        issuer_id=issuer,
        actor=actor(),
    )
    with opened() as runtime, progress_display(generate_key is not None) as progress:
        issued = runtime.execute(
            lambda ca: ca.issue(request),
            action="certificate.issue",
            actor=actor(),
            object_id=subject or "csr",
            progress=progress,
        )
    if json_output:
        output.print_json(output.issued_json(issued))
        return
    output.stdout.print(f"[green]Issued[/] certificate {issued.record.serial_hex} for {issued.record.subject}.")
    output.stdout.print(issued.certificate_pem, end="")


@cert_app.command("show")
def cert_show(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Show one certificate and its status."""
    with opened() as runtime:
        view = runtime.execute(
            lambda ca: ca.show(serial, issuer), action="certificate.show", actor=actor(), object_id=serial
        )
    if json_output:
        output.print_json(output.certificate_json(view))
        return
    output.show_certificate(view)


@cert_app.command("list")
def cert_list(
    status: Annotated[StatusChoice | None, typer.Option(help="Only certificates with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100000, help="At most this many.")] = 1000,
    json_output: JsonOption = False,
) -> None:
    """List certificates."""
    wanted = CertificateStatus(status.value) if status else None
    with opened() as runtime:
        views = runtime.execute(
            lambda ca: ca.list_certificates(wanted, limit), action="certificate.list", actor=actor(), object_id="-"
        )
    if json_output:
        output.print_json([output.certificate_json(view) for view in views])
        return
    output.stdout.print(output.certificate_table(views, title=f"{len(views)} certificates"))


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{option} must be an ISO 8601 time such as 2026-11-01T08:00:00+07:00.") from None
    if moment.tzinfo is None:
        raise InvalidInputError(f"{option} needs a time zone, such as +07:00 or Z.")
    return moment


def _lifecycle(
    serial: str, operation: Callable[[CertificateAuthority], Any], action: str, json_output: bool, done: str
) -> None:
    with opened() as runtime:
        view = runtime.execute(operation, action=action, actor=actor(), object_id=serial)
    if json_output:
        output.print_json(output.certificate_json(view))
        return
    output.stdout.print(f"Certificate {view.record.serial_hex} {done}.")


@cert_app.command("revoke")
def cert_revoke(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    reason: Annotated[ReasonChoice, typer.Option(help="RFC 5280 revocation reason.")],
    invalidity_date: Annotated[str | None, typer.Option(help="When the key was compromised (ISO 8601).")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a certificate (certificate-hold suspends it instead)."""
    when = _parse_time(invalidity_date, "--invalidity-date")
    why = RevocationReason(reason.value)
    done = "is on hold" if why is RevocationReason.CERTIFICATE_HOLD else f"is revoked ({why.value})"
    _lifecycle(
        serial,
        lambda ca: ca.revoke(serial, reason=why, actor=actor(), invalidity_date=when, issuer_id=issuer),
        "certificate.hold" if why is RevocationReason.CERTIFICATE_HOLD else "certificate.revoke",
        json_output,
        done,
    )


@cert_app.command("hold")
def cert_hold(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Suspend a certificate (certificateHold); release it later with 'cert release'."""
    _lifecycle(
        serial,
        lambda ca: ca.revoke(serial, reason=RevocationReason.CERTIFICATE_HOLD, actor=actor(), issuer_id=issuer),
        "certificate.hold",
        json_output,
        "is on hold",
    )


@cert_app.command("release")
def cert_release(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Release a certificate from hold."""
    _lifecycle(
        serial,
        lambda ca: ca.release(serial, actor=actor(), issuer_id=issuer),
        "certificate.release",
        json_output,
        "is released from hold and valid again",
    )


@cert_app.command("renew")
def cert_renew(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    validity_days: Annotated[int | None, typer.Option(help="Validity in days.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a new certificate with the same subject and key and a new validity."""
    with opened() as runtime:
        issued = runtime.execute(
            lambda ca: ca.renew(serial, actor=actor(), validity_days=validity_days, issuer_id=issuer),
            action="certificate.renew",
            actor=actor(),
            object_id=serial,
        )
    if json_output:
        output.print_json(output.issued_json(issued))
        return
    output.stdout.print(f"[green]Renewed[/] as certificate {issued.record.serial_hex}.")


@cert_app.command("rekey")
def cert_rekey(
    serial: Annotated[str, typer.Argument(help="Serial number in hex.")],
    csr: Annotated[Path | None, typer.Option(help="PKCS#10 request with the new key.")] = None,
    generate_key: Annotated[KeyChoice | None, typer.Option(help="Generate the new key pair in the HSM.")] = None,
    validity_days: Annotated[int | None, typer.Option(help="Validity in days.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuing CA id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a new certificate with the same subject and a new key."""
    if (csr is None) == (generate_key is None):
        raise InvalidInputError("Give exactly one of --csr FILE or --generate-key ALGORITHM.")
    csr_data = read_file(csr, "CSR") if csr is not None else None
    algorithm = KeyAlgorithm(generate_key.value) if generate_key else None
    with opened() as runtime, progress_display(algorithm is not None) as progress:
        issued = runtime.execute(
            lambda ca: ca.rekey(
                serial,
                actor=actor(),
                csr=csr_data,
                generate_key=algorithm,
                validity_days=validity_days,
                issuer_id=issuer,
            ),
            action="certificate.rekey",
            actor=actor(),
            object_id=serial,
            progress=progress,
        )
    if json_output:
        output.print_json(output.issued_json(issued))
        return
    output.stdout.print(f"[green]Re-keyed[/] as certificate {issued.record.serial_hex}.")


# -- crl -------------------------------------------------------------------------------------


@crl_app.command("publish")
def crl_publish(json_output: JsonOption = False) -> None:
    """Sign and store a fresh complete CRL and delta CRL for each CA, now."""
    with opened() as runtime:
        published = runtime.publish_crls(force=True)
        runtime.refresh_ocsp_responses()
    if json_output:
        output.print_json(
            [
                {
                    "ca_id": ca_id,
                    "crl_number": result.full.number,
                    "delta_crl_number": result.delta.number,
                    "delta_base_crl_number": result.delta.base_number,
                    "entries": result.full.entry_count,
                    "this_update": output.iso_utc(result.full.this_update),
                    "next_update": output.iso_utc(result.full.next_update),
                }
                for ca_id, result in published.items()
            ]
        )
        return
    for ca_id, result in published.items():
        output.stdout.print(
            f"{ca_id}: CRL {result.full.number} ({result.full.entry_count} entries) and delta CRL "
            f"{result.delta.number} (base {result.delta.base_number}), next update {result.full.next_update.isoformat()}."
        )


# -- audit ---------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(json_output: JsonOption = False) -> None:
    """Check the whole audit hash chain and its signed checkpoints; exit 0 only when intact."""
    with opened() as runtime:
        verdict = Platform(runtime).verify_audit()
    if json_output:
        output.print_json(
            {
                "intact": verdict.intact,
                "events_checked": verdict.events_checked,
                "first_broken_event": verdict.first_broken_sequence,
                "problem": verdict.problem,
            }
        )
    elif verdict.intact:
        output.stdout.print(f"The audit log is intact ({verdict.events_checked} events).")
    if not verdict.intact:
        output.stderr.print(f"error: {verdict.problem}", highlight=False, markup=False)
        raise typer.Exit(code=1)


@audit_app.command("checkpoint")
def audit_checkpoint(json_output: JsonOption = False) -> None:
    """Sign the current head of the audit chain with the audit key in the HSM."""
    with opened() as runtime:
        event = Platform(runtime).checkpoint(force=True)
    if json_output:
        output.print_json({"checkpoint_event": event})
    elif event is None:
        output.stdout.print("No new audit events since the last checkpoint.")
    else:
        output.stdout.print(f"Signed a checkpoint at audit event {event}.")


# -- agencies and clients ------------------------------------------------------------------


@agency_app.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Argument(help="Short id, e.g. bo-tu-phap.")],
    name: Annotated[str, typer.Option(help="Full name, e.g. 'Bộ Tư pháp'.")],
    parent: Annotated[str | None, typer.Option(help="Parent agency id (for a sub-unit).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Register an agency or a sub-unit."""
    with opened() as runtime:
        record = Platform(runtime).add_agency(agency_id, name, parent, actor=actor())
    if json_output:
        output.print_json({"id": record.id, "name": record.name, "parent_id": record.parent_id})
        return
    output.stdout.print(f"Added agency {record.id}: {record.name}.")


@agency_app.command("list")
def agency_list(json_output: JsonOption = False) -> None:
    """List agencies."""
    with opened() as runtime:
        agencies = Platform(runtime).list_agencies()
    if json_output:
        output.print_json([{"id": a.id, "name": a.name, "parent_id": a.parent_id} for a in agencies])
        return
    for agency in agencies:
        parent = f" (under {agency.parent_id})" if agency.parent_id else ""
        output.stdout.print(f"{agency.id}: {agency.name}{parent}")


class RoleChoice(StrEnum):
    admin = "admin"
    ra_officer = "ra-officer"
    signer = "signer"
    verifier = "verifier"
    auditor = "auditor"


def _client_json(client: Any, token: str | None = None) -> dict[str, Any]:
    data = {
        "id": client.id,
        "name": client.name,
        "role": client.role,
        "agency_id": client.agency_id,
        "status": client.status,
        "certificate_fingerprint": client.certificate_fingerprint,
        "created_at": output.iso_utc(client.created_at),
        "rotated_at": output.iso_utc(client.rotated_at),
    }
    if token is not None:
        data["token"] = token
    return data


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Argument(help="Name of the calling system or officer.")],
    role: Annotated[RoleChoice, typer.Option(help="What it may do.")],
    agency: Annotated[str, typer.Option(help="The agency it belongs to.")],
    certificate_fingerprint: Annotated[
        str | None, typer.Option(help="SHA-256 of its TLS client certificate (for mutual TLS behind a proxy).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Register an API client and print its secret token, once."""
    with opened() as runtime:
        created = Platform(runtime).add_client(
            name, role=role.value, agency_id=agency, actor=actor(), certificate_fingerprint=certificate_fingerprint
        )
    if json_output:
        output.print_json(_client_json(created.client, created.token))
        return
    output.stdout.print(f"Added client {name} ({role.value}, agency {agency}). Its token, shown only now:")
    output.stdout.print(created.token, highlight=False, markup=False)


@client_app.command("list")
def client_list(json_output: JsonOption = False) -> None:
    """List API clients (never their secrets)."""
    with opened() as runtime:
        clients = Platform(runtime).list_clients()
    if json_output:
        output.print_json([_client_json(c) for c in clients])
        return
    for client in clients:
        output.stdout.print(f"{client.name}: {client.role}, agency {client.agency_id}, {client.status}")


@client_app.command("disable")
def client_disable(name: Annotated[str, typer.Argument(help="Client name.")], json_output: JsonOption = False) -> None:
    """Disable a client: its token stops working at once."""
    with opened() as runtime:
        client = Platform(runtime).disable_client(name, actor=actor())
    if json_output:
        output.print_json(_client_json(client))
        return
    output.stdout.print(f"Client {name} is disabled.")


@client_app.command("rotate")
def client_rotate(name: Annotated[str, typer.Argument(help="Client name.")], json_output: JsonOption = False) -> None:
    """Give a client a new token (printed once); the old one stops working at once."""
    with opened() as runtime:
        created = Platform(runtime).rotate_client(name, actor=actor())
    if json_output:
        output.print_json(_client_json(created.client, created.token))
        return
    output.stdout.print(f"New token for {name}, shown only now:")
    output.stdout.print(created.token, highlight=False, markup=False)


# -- sole control ----------------------------------------------------------------------------


@credential_app.command("enrol-totp")
def credential_enrol_totp(
    serial: Annotated[str, typer.Argument(help="Serial number (hex) of the official's certificate.")],
    json_output: JsonOption = False,
) -> None:
    """Give an official a new TOTP seed (replacing any earlier one), shown once: only to the official."""
    with opened() as runtime:
        credential, enrolment = SoleControl(Platform(runtime)).enrol_totp(serial, actor=actor())
    if json_output:
        output.print_json({"credential": credential, "secret": enrolment.secret_base32, "otpauth_uri": enrolment.uri})
        return
    output.stdout.print(f"New TOTP seed for credential {credential}, shown only now; enter it in the official's app:")
    output.stdout.print(enrolment.secret_base32, highlight=False, markup=False)
    output.stdout.print(enrolment.uri, highlight=False, markup=False)


@credential_app.command("set-pin")
def credential_set_pin(
    serial: Annotated[str, typer.Argument(help="Serial number (hex) of the official's certificate.")],
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from the first line of stdin.")] = False,
) -> None:
    """Set (or reset, at the RA desk) an official's PIN; the official types it, twice."""
    if pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    else:
        pin = getpass.getpass("The official's new PIN: ")
        if getpass.getpass("Again: ") != pin:
            raise InvalidInputError("The two PINs differ.")
    with opened() as runtime:
        SoleControl(Platform(runtime)).set_pin(serial, pin, actor=actor())
    output.stdout.print("The PIN is set.")


@credential_app.command("set-stamp-image")
def credential_set_stamp_image(
    serial: Annotated[str, typer.Argument(help="Serial number (hex) of the official's or agency's certificate.")],
    image: Annotated[Path, typer.Argument(help="PNG with a transparent background: the seal or the signature.")],
    json_output: JsonOption = False,
) -> None:
    """Store the image the credential's visible signatures show (Decree 30)."""
    data = read_file(image, "stamp image")
    with opened() as runtime:
        digest = SoleControl(Platform(runtime)).set_stamp_image(serial, data, actor=actor())
    if json_output:
        output.print_json({"credential": serial, "image_sha256": digest})
        return
    output.stdout.print(f"The stamp image of credential {serial} is set (SHA-256 {digest}).")


@credential_app.command("factors")
def credential_factors(
    serial: Annotated[str, typer.Argument(help="Serial number (hex) of the official's certificate.")],
    json_output: JsonOption = False,
) -> None:
    """Which second factors an official's credential has (never the factors)."""
    with opened() as runtime:
        status = SoleControl(Platform(runtime)).factor_status(serial)
    data = {
        "credential": status.credential,
        "totp": status.totp,
        "pin": status.pin,
        "locked_until": output.iso_utc(status.locked_until),
    }
    if json_output:
        output.print_json(data)
        return
    locked = f", locked until {data['locked_until']}" if status.locked_until else ""
    output.stdout.print(f"Credential {status.credential}: TOTP {_yes(status.totp)}, PIN {_yes(status.pin)}{locked}.")


# -- serve ---------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (one HSM session each).")] = 1,
) -> None:
    """Run the HTTP service."""
    settings = load_settings()
    # Fail fast, with one sentence, before any worker starts.
    Runtime.open(settings).close()
    from govsign.cli.serve import run_server

    run_server(settings, host=host, port=port, workers=workers)


# -- entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=os.environ.get("GOVSIGN_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        result = app(args=argv, standalone_mode=False, prog_name="govsign")
    except GovsignError as exc:
        output.stderr.print(f"error: {exc.message}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_CODES.get(exc.kind, 1))
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
    except (typer.Abort, click.exceptions.Abort):
        output.stderr.print("error: Aborted.", highlight=False, markup=False)
        sys.exit(130)
    except (TyperException, click.ClickException) as exc:
        # Usage errors (unknown command or option, bad value): one sentence, like every error.
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        message = " ".join(str(message).split()).rstrip(".") or "No command given"
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", None) or "govsign"
        output.stderr.print(f"error: {message}; see '{command} --help'.", highlight=False, markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        logging.getLogger("govsign.cli").debug("unexpected error", exc_info=True)
        output.stderr.print(
            "error: An internal error stopped the command; nothing was committed. "
            "Set GOVSIGN_LOG_LEVEL=DEBUG for details.",
            highlight=False,
            markup=False,
        )
        sys.exit(70)
    if isinstance(result, int) and result:
        sys.exit(result)
