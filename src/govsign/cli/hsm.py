"""``govsign hsm``: the PKCS#11 module, the token and the keys govsign uses."""

from __future__ import annotations

import typer
from rich.table import Table

from govsign.cli import output
from govsign.cli.common import JsonOption, opened, yes

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
