"""``govsign audit``: the audit trail's check and its signed checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, opened

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None,
        typer.Option(help="The audit export (JSON lines) to check against; default: GOVSIGN_AUDIT_EXPORT."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check every audit event (hash, link, keyed chain value), the numbered and chained checkpoints
    and the export outside the database; exit 0 only when intact, else name the first altered event."""
    with opened() as services:
        verdict = services.audit_checkpoints.verify(export)
    if json_output:
        output.print_json(
            {
                "intact": verdict.intact,
                "events_checked": verdict.events_checked,
                "first_broken_event": verdict.first_broken_sequence,
                "problem": verdict.problem,
                "notes": list(verdict.notes),
            }
        )
    elif verdict.intact:
        output.stdout.print(f"The audit log is intact ({verdict.events_checked} events).")
        for note in verdict.notes:
            output.stdout.print(f"note: {note}", highlight=False, markup=False)
    if not verdict.intact:
        output.stderr.print(f"error: {verdict.problem}", highlight=False, markup=False)
        raise typer.Exit(code=1)


@audit_app.command("checkpoint")
def audit_checkpoint(json_output: JsonOption = False) -> None:
    """Sign a checkpoint of the audit chain's head with the audit key in the HSM (and the ones due)."""
    with opened() as services:
        event = services.audit_checkpoints.checkpoint(force=True)
    if json_output:
        output.print_json({"checkpoint_event": event})
    elif event is None:
        output.stdout.print("No new audit events since the last checkpoint.")
    else:
        output.stdout.print(f"Signed a checkpoint at audit event {event}.")
