"""``govsign ca``: the certificate authorities and the replacement of their service certificates;
``govsign crl``: CRL publication."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from govsign.cli import output
from govsign.cli.common import JsonOption, opened, operator
from govsign.clock import to_vietnam_time
from govsign.pki.authority import ISSUING_CA_ID, IssuedCertificate
from govsign.pki.records import RevocationReason

ca_app = typer.Typer(help="Certificate authorities.", no_args_is_help=True)
crl_app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)


@ca_app.command("list")
def ca_list(json_output: JsonOption = False) -> None:
    """List the certificate authorities."""
    with opened() as services:
        cas = services.hierarchy.list_cas()
    if json_output:
        output.print_json([output.ca_json(ca) for ca in cas])
        return
    table = Table()
    for column in ("Id", "Role", "Subject", "Key", "Not after (+07:00)", "Serial"):
        table.add_column(column, overflow="fold")
    for ca in cas:
        table.add_row(
            ca.id, ca.role.value, ca.subject, ca.key.algorithm.value, to_vietnam_time(ca.not_after), ca.serial_hex
        )
    output.stdout.print(table)


class ServiceProfile(StrEnum):
    ocsp_responder = "ocsp-responder"
    tsa = "tsa"


class ReplacementReason(StrEnum):
    superseded = "superseded"
    key_compromise = "key-compromise"
    affiliation_changed = "affiliation-changed"
    cessation_of_operation = "cessation-of-operation"
    unspecified = "unspecified"


@ca_app.command("replace-service-certificate")
def ca_replace_service_certificate(
    profile: Annotated[ServiceProfile, typer.Argument(help="Which service certificate: ocsp-responder or tsa.")],
    reason: Annotated[
        ReplacementReason, typer.Option(help="Why; the replaced certificate is revoked with this reason.")
    ] = ReplacementReason.superseded,
    ca: Annotated[str, typer.Option("--ca", help="The issuing CA.")] = ISSUING_CA_ID,
    json_output: JsonOption = False,
) -> None:
    """Replace the OCSP responder or TSA certificate (new HSM key, the old one revoked). CA
    administration under dual control: by default this files a request that another operator
    approves with 'govsign approval approve ID'."""
    with opened() as services:
        result = services.hierarchy.replace_service_certificate(
            profile.value, operator(), reason=RevocationReason(reason.value), ca_id=ca
        )
    if isinstance(result, IssuedCertificate):
        if json_output:
            output.print_json(output.issued_json(result))
        else:
            output.stdout.print(f"New {profile.value} certificate {result.record.serial_hex}.", highlight=False)
        return
    if json_output:
        output.print_json(output.approval_json(result))
    else:
        output.show_pending(result)


@crl_app.command("publish")
def crl_publish(json_output: JsonOption = False) -> None:
    """Sign and store a fresh complete CRL and delta CRL for each CA, now."""
    with opened() as services:
        published = services.crls.publish(force=True)
        services.ocsp.refresh()
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
