"""``govsign approval``: dual-control requests, listed, approved (and so executed) or rejected by
a second operator (another user than the one who asked)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, opened, operator
from govsign.errors import NotFoundError
from govsign.pki.authority import CertificateView, IssuedCertificate
from govsign.storage.approvals import ApprovalRecord

approval_app = typer.Typer(help="Dual-control approval requests.", no_args_is_help=True)

ApprovalId = Annotated[str, typer.Argument(help="The approval request's id.")]


def _describe(result: object) -> dict[str, Any]:
    """What an approval request records of its executed operation's result."""
    if isinstance(result, IssuedCertificate):
        return {"serial": result.record.serial_hex, "profile": result.record.profile}
    if isinstance(result, CertificateView):
        return {"serial": result.record.serial_hex, "status": result.status.value}
    return {}


@approval_app.command("list")
def approval_list(
    status: Annotated[str | None, typer.Option(help="pending, executed, rejected or failed.")] = None,
    json_output: JsonOption = False,
) -> None:
    """List approval requests, newest first."""
    with opened() as services:
        found = services.approvals.list(operator(), status=status, after=None, limit=200)
    if json_output:
        output.print_json([output.approval_json(record) for record in found.items])
        return
    for record in found.items:
        output.stdout.print(
            f"{record.id}  {record.status:9}  {record.operation} {record.target}  by {record.requested_by}",
            highlight=False,
            markup=False,
        )


@approval_app.command("show")
def approval_show(approval_id: ApprovalId, json_output: JsonOption = False) -> None:
    """Show one approval request."""
    with opened() as services, services.database.read_only() as ports:
        record = ports.approvals.get(approval_id)
    if record is None:
        raise NotFoundError(f"There is no approval request '{approval_id}'.")
    if json_output:
        output.print_json(output.approval_json(record))
    else:
        output.stdout.print(output.approval_json(record))


def _decide(approval_id: str, approve: bool, json_output: bool) -> None:
    with opened() as services:
        result = services.approvals.decide(approval_id, approve=approve, requester=operator(), describe=_describe)
        with services.database.read_only() as ports:
            record = ports.approvals.get(approval_id)
    if json_output:
        output.print_json(output.approval_json(record) if record is not None else _describe(result))
    elif isinstance(result, ApprovalRecord) or record is None:
        output.stdout.print(f"Approval request {approval_id} rejected.", highlight=False)
    else:
        output.stdout.print(f"Approval request {approval_id} approved and executed: {record.result}.", highlight=False)


@approval_app.command("approve")
def approval_approve(approval_id: ApprovalId, json_output: JsonOption = False) -> None:
    """Approve (and so execute) a pending request that another operator or officer made."""
    _decide(approval_id, True, json_output)


@approval_app.command("reject")
def approval_reject(approval_id: ApprovalId, json_output: JsonOption = False) -> None:
    """Reject a pending request that another operator or officer made."""
    _decide(approval_id, False, json_output)
