"""``govsign agency`` and ``govsign client``: the agencies and the API clients acting for them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, actor, opened
from govsign.services.directory import NewClient
from govsign.storage.access import APIClientRecord

agency_app = typer.Typer(help="Agencies (cơ quan, tổ chức) and their sub-units.", no_args_is_help=True)
client_app = typer.Typer(help="API clients: the systems and officers that call the REST API.", no_args_is_help=True)

ClientName = Annotated[str, typer.Argument(help="Client name.")]


class RoleChoice(StrEnum):
    admin = "admin"
    ra_officer = "ra-officer"
    signer = "signer"
    verifier = "verifier"
    auditor = "auditor"


@agency_app.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Argument(help="Short id, e.g. bo-tu-phap.")],
    name: Annotated[str, typer.Option(help="Full name, e.g. 'Bộ Tư pháp'.")],
    parent: Annotated[str | None, typer.Option(help="Parent agency id (for a sub-unit).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Register an agency or a sub-unit."""
    with opened() as services:
        record = services.directory.add_agency(agency_id, name, parent, actor=actor())
    if json_output:
        output.print_json({"id": record.id, "name": record.name, "parent_id": record.parent_id})
        return
    output.stdout.print(f"Added agency {record.id}: {record.name}.")


@agency_app.command("list")
def agency_list(json_output: JsonOption = False) -> None:
    """List agencies."""
    with opened() as services:
        agencies = services.directory.list_agencies()
    if json_output:
        output.print_json([{"id": a.id, "name": a.name, "parent_id": a.parent_id} for a in agencies])
        return
    for agency in agencies:
        parent = f" (under {agency.parent_id})" if agency.parent_id else ""
        output.stdout.print(f"{agency.id}: {agency.name}{parent}")


def _client_json(client: APIClientRecord, token: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
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


def _new_token(created: NewClient, json_output: bool, message: str) -> None:
    """A client with its new token, which is shown only now."""
    if json_output:
        output.print_json(_client_json(created.client, created.token))
        return
    output.stdout.print(message)
    output.stdout.print(created.token, highlight=False, markup=False)


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
    with opened() as services:
        created = services.directory.add_client(
            name, role=role.value, agency_id=agency, actor=actor(), certificate_fingerprint=certificate_fingerprint
        )
    _new_token(created, json_output, f"Added client {name} ({role.value}, agency {agency}). Its token, shown only now:")


@client_app.command("list")
def client_list(json_output: JsonOption = False) -> None:
    """List API clients (never their secrets)."""
    with opened() as services:
        clients = services.directory.list_clients()
    if json_output:
        output.print_json([_client_json(c) for c in clients])
        return
    for client in clients:
        output.stdout.print(f"{client.name}: {client.role}, agency {client.agency_id}, {client.status}")


@client_app.command("disable")
def client_disable(name: ClientName, json_output: JsonOption = False) -> None:
    """Disable a client: its token stops working at once."""
    with opened() as services:
        client = services.directory.disable_client(name, actor=actor())
    if json_output:
        output.print_json(_client_json(client))
        return
    output.stdout.print(f"Client {name} is disabled.")


@client_app.command("rotate")
def client_rotate(name: ClientName, json_output: JsonOption = False) -> None:
    """Give a client a new token (printed once); the old one stops working at once."""
    with opened() as services:
        created = services.directory.rotate_client(name, actor=actor())
    _new_token(created, json_output, f"New token for {name}, shown only now:")
