"""``govsign hsm``: the PKCS#11 module, the token and the keys govsign uses."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from govsign.cli import output
from govsign.cli.common import JsonOption, actor, opened, yes
from govsign.cli.output import iso_utc
from govsign.config import load_settings

hsm_app = typer.Typer(help="The HSM token.", no_args_is_help=True)


@hsm_app.command("info")
def hsm_info(json_output: JsonOption = False) -> None:
    """Show the PKCS#11 module, the token and its private keys (never any key material)."""
    with opened() as services:
        info = services.hsm.token()
        keys = services.hsm.private_keys()
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
    output.stdout.print(f"Module   {info.module_path} ({info.library_description} {info.library_version})")
    output.stdout.print(
        f"Token    {info.token_label} — {info.token_manufacturer} {info.token_model}, serial {info.token_serial}"
    )
    table = Table(title=f"{len(keys)} private keys")
    for column in ("Label", "Algorithm", "Sensitive", "Extractable", "Generated on token"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.ref.label, key.ref.algorithm.value, yes(key.sensitive), yes(key.extractable), yes(key.local))
    output.stdout.print(table)


@hsm_app.command("reconcile")
def hsm_reconcile(
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Age of a pending marker before its key is destroyed (default GOVSIGN_PENDING_KEY_GRACE_SECONDS).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list; destroy nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List the token's private keys that no record names, and destroy those an interrupted
    issuance left (pending marker older than the grace period; audited). Keys that a CA, a
    certificate or the audit log names, and keys without a pending marker, are never touched."""
    seconds = grace_seconds if grace_seconds is not None else load_settings().pending_key_grace_seconds
    with opened() as services:
        report = services.hsm.reconcile(grace=dt.timedelta(seconds=seconds), actor=actor(), destroy=not dry_run)
    if json_output:
        output.print_json(
            {
                "recorded": report.recorded,
                "unrecorded": [
                    {
                        "label": key.label,
                        "id": key.key_id_hex,
                        "algorithm": key.algorithm,
                        "pending_since": iso_utc(key.pending_since),
                    }
                    for key in report.unrecorded
                ],
                "destroyed": list(report.destroyed),
                "cleared": list(report.cleared),
                "waiting": list(report.waiting),
            }
        )
        return
    output.stdout.print(
        f"{report.recorded} keys have a record; {len(report.unrecorded)} have none; "
        f"{len(report.destroyed)} orphans of interrupted issuances destroyed, {len(report.waiting)} pending within "
        "the grace period.",
        highlight=False,
    )
    for key in report.unrecorded:
        state = f"pending since {iso_utc(key.pending_since)}" if key.pending_since else "no record, kept"
        output.stdout.print(f"  {key.label}  {key.algorithm}  {state}", highlight=False, markup=False)
