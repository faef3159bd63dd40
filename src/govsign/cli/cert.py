"""``govsign cert``: subscriber certificates, through the same certificate service as the API."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, KeyChoice, opened, operator, parse_time, progress_display, read_file
from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateView, IssuedCertificate
from govsign.pki.issuance import IssuanceRequest
from govsign.pki.profiles import SUBSCRIBER_PROFILE_NAMES
from govsign.pki.records import CertificateStatus, RevocationReason

cert_app = typer.Typer(help="Subscriber certificates.", no_args_is_help=True)

Serial = Annotated[str, typer.Argument(help="Serial number in hex.")]
Issuer = Annotated[str | None, typer.Option(help="Issuing CA id.")]


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


def _algorithm(choice: KeyChoice | None) -> KeyAlgorithm | None:
    return KeyAlgorithm(choice.value) if choice else None


#: ``--out FILE``: write the certificate there (PEM) as well.
OutOption = Annotated[Path | None, typer.Option("--out", help="Also write the certificate to this file (PEM).")]


def _write_pem(out: Path | None, pem: str) -> None:
    """Write the certificate PEM to ``out`` (replacing it), when one is named."""
    if out is None:
        return
    try:
        out.write_text(pem, encoding="ascii")
    except OSError as exc:
        raise InvalidInputError(
            f"Could not write {out} ({exc.strerror or exc}); the certificate is stored all the same: "
            "'govsign cert show SERIAL --out FILE' writes it again."
        ) from None


def _issued(issued: IssuedCertificate, json_output: bool, message: str, out: Path | None = None) -> None:
    _write_pem(out, issued.certificate_pem)
    if json_output:
        output.print_json(output.issued_json(issued))
        return
    output.stdout.print(message)
    if out is not None:
        output.stdout.print(f"Wrote the certificate to {out}.", markup=False, highlight=False)


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
    agency: Annotated[
        str | None,
        typer.Option(help="The subscriber's agency (its signer clients may then sign with the certificate)."),
    ] = None,
    out: OutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a certificate from a CSR or with a key generated in the HSM."""
    spec = IssuanceRequest(
        agency_id=agency,
        profile=profile,
        subject=subject,
        email=email,
        csr=read_file(csr, "CSR") if csr is not None else None,
        key_algorithm=_algorithm(generate_key),
        validity_days=validity_days,
        issuer_id=issuer,
    )
    with opened() as services, progress_display(generate_key is not None) as progress:
        issued = services.certificates.enrol(spec, operator(), progress=progress)
    assert isinstance(issued, IssuedCertificate)  # the operator acts alone: never a pending approval
    _write_pem(out, issued.certificate_pem)
    if json_output:
        output.print_json(output.issued_json(issued))
        return
    output.stdout.print(f"[green]Issued[/] certificate {issued.record.serial_hex} for {issued.record.subject}.")
    output.stdout.print(issued.certificate_pem, end="")
    if out is not None:
        output.stdout.print(f"Wrote the certificate to {out}.", markup=False, highlight=False)


@cert_app.command("show")
def cert_show(serial: Serial, issuer: Issuer = None, out: OutOption = None, json_output: JsonOption = False) -> None:
    """Show one certificate and its status."""
    with opened() as services:
        view = services.certificates.show(serial, operator(), issuer_id=issuer)
    _write_pem(out, view.certificate_pem)
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
    with opened() as services:
        views = services.certificates.list_all(CertificateStatus(status.value) if status else None, limit)
    if json_output:
        output.print_json([output.certificate_json(view) for view in views])
        return
    subscribers = [view for view in views if view.record.profile in SUBSCRIBER_PROFILE_NAMES]
    service = [view for view in views if view.record.profile not in SUBSCRIBER_PROFILE_NAMES]
    output.stdout.print(output.certificate_table(subscribers, title=f"{len(subscribers)} subscriber certificates"))
    if service:
        title = f"{len(service)} certificates of the service itself (OCSP responder, time-stamping, audit)"
        output.stdout.print(output.certificate_table(service, title=title))


def _changed(view: object, json_output: bool, done: str) -> None:
    assert isinstance(view, CertificateView)  # the operator acts alone: never a pending approval
    if json_output:
        output.print_json(output.certificate_json(view))
        return
    output.stdout.print(f"Certificate {view.record.serial_hex} {done}.")


@cert_app.command("revoke")
def cert_revoke(
    serial: Serial,
    reason: Annotated[ReasonChoice, typer.Option(help="RFC 5280 revocation reason.")],
    invalidity_date: Annotated[str | None, typer.Option(help="When the key was compromised (ISO 8601).")] = None,
    issuer: Issuer = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a certificate (certificate-hold suspends it instead)."""
    when = parse_time(invalidity_date, "--invalidity-date")
    why = RevocationReason(reason.value)
    with opened() as services:
        view = services.certificates.revoke(serial, why, operator(), invalidity_date=when, issuer_id=issuer)
    _changed(
        view, json_output, "is on hold" if why is RevocationReason.CERTIFICATE_HOLD else f"is revoked ({why.value})"
    )


@cert_app.command("hold")
def cert_hold(serial: Serial, issuer: Issuer = None, json_output: JsonOption = False) -> None:
    """Suspend a certificate (certificateHold); release it later with 'cert release'."""
    with opened() as services:
        view = services.certificates.hold(serial, operator(), issuer_id=issuer)
    _changed(view, json_output, "is on hold")


@cert_app.command("release")
def cert_release(serial: Serial, issuer: Issuer = None, json_output: JsonOption = False) -> None:
    """Release a certificate from hold."""
    with opened() as services:
        view = services.certificates.release(serial, operator(), issuer_id=issuer)
    _changed(view, json_output, "is released from hold and valid again")


@cert_app.command("renew")
def cert_renew(
    serial: Serial,
    validity_days: Annotated[int | None, typer.Option(help="Validity in days.")] = None,
    issuer: Issuer = None,
    out: OutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a new certificate with the same subject and key and a new validity."""
    with opened() as services:
        issued = services.certificates.renew(serial, operator(), validity_days=validity_days, issuer_id=issuer)
    _issued(issued, json_output, f"[green]Renewed[/] as certificate {issued.record.serial_hex}.", out)


@cert_app.command("rekey")
def cert_rekey(
    serial: Serial,
    csr: Annotated[Path | None, typer.Option(help="PKCS#10 request with the new key.")] = None,
    generate_key: Annotated[KeyChoice | None, typer.Option(help="Generate the new key pair in the HSM.")] = None,
    validity_days: Annotated[int | None, typer.Option(help="Validity in days.")] = None,
    issuer: Issuer = None,
    out: OutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a new certificate with the same subject and a new key."""
    csr_data = read_file(csr, "CSR") if csr is not None else None
    with opened() as services, progress_display(generate_key is not None) as progress:
        issued = services.certificates.rekey(
            serial,
            operator(),
            csr=csr_data,
            key_algorithm=_algorithm(generate_key),
            validity_days=validity_days,
            issuer_id=issuer,
            progress=progress,
        )
    _issued(issued, json_output, f"[green]Re-keyed[/] as certificate {issued.record.serial_hex}.", out)
