"""``govsign init``: the token, the schema and, once, the CA hierarchy."""

from __future__ import annotations

from typing import Annotated

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, KeyChoice, actor, opened, progress_display
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.hierarchy import HierarchySpec


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
    with opened(initialize=True) as services, progress_display(True) as progress:
        result = services.hierarchy.initialize(spec, actor=actor(), progress=progress)
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
