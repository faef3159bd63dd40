"""``govsign audit``: the audit chain's check and its signed checkpoints."""

from __future__ import annotations

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, opened

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(json_output: JsonOption = False) -> None:
    """Check the whole audit hash chain and its signed checkpoints; exit 0 only when intact."""
    with opened() as services:
        verdict = services.audit_checkpoints.verify()
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
    with opened() as services:
        event = services.audit_checkpoints.checkpoint(force=True)
    if json_output:
        output.print_json({"checkpoint_event": event})
    elif event is None:
        output.stdout.print("No new audit events since the last checkpoint.")
    else:
        output.stdout.print(f"Signed a checkpoint at audit event {event}.")
