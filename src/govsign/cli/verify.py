"""``govsign verify``: the verification report of a signed document, as the API gives it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from govsign.cli import output
from govsign.cli.common import JsonOption, opened, operator
from govsign.errors import InvalidInputError
from govsign.services.documents import SpooledDocument

if TYPE_CHECKING:  # the verification cores are imported by the services when first used
    from govsign.services.verifications import StoredReport, Verifications

DocumentArgument = Annotated[
    Path,
    typer.Argument(
        help="The signed document: a PDF, an S/MIME .eml, an attached CMS (.p7m), or the document "
        "a detached signature or time-stamp covers.",
        show_default=False,
    ),
]
SignatureOption = Annotated[
    Path | None,
    typer.Option(
        "--signature", help="A detached CMS signature (.p7s) or an RFC 3161 time-stamp (.tsr, .tst) over FILE."
    ),
]

#: File name endings of RFC 3161 time-stamp replies and tokens.
TIMESTAMP_SUFFIXES = (".tsr", ".tst", ".tsq.tsr")


def verify(document: DocumentArgument, signature: SignatureOption = None, json_output: JsonOption = False) -> None:
    """Verify a signed document; exit 0 only when the conclusion is valid (1 when invalid,
    indeterminate or unsigned, 2 on bad input)."""
    content = _read(document)
    detached = _read(signature) if signature is not None else None
    with opened() as services:
        stored = _verify(services.verifications, content, detached, signature)
    report = stored.as_json()
    if json_output:
        output.print_json(report)
    else:
        _print(report)
    if report["conclusion"] != "valid":
        raise typer.Exit(code=1)


def _read(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not content:
        raise InvalidInputError(f"{path} is empty.")
    return content


def _verify(verifications: Verifications, content: bytes, detached: bytes | None, path: Path | None) -> StoredReport:
    document = SpooledDocument.of(content)
    if detached is not None and path is not None and path.name.lower().endswith(TIMESTAMP_SUFFIXES):
        return verifications.verify_timestamp(detached, document, operator())
    if detached is not None:
        return verifications.verify_cms(detached, operator(), document=document)
    if content.lstrip()[:5] == b"%PDF-":
        return verifications.verify_pdf(document, operator())
    head = content[:8192].lower()
    if b"content-type:" in head and (b"multipart/signed" in head or b"pkcs7-mime" in head):
        return verifications.verify_smime(document, operator())
    return verifications.verify_cms(content, operator())


_CONCLUSIONS = {
    "valid": "[green]HỢP LỆ / VALID[/]",
    "invalid": "[red]KHÔNG HỢP LỆ / INVALID[/]",
    "indeterminate": "[yellow]CHƯA XÁC ĐỊNH ĐƯỢC / INDETERMINATE[/]",
    "no-signatures": "Tài liệu không có chữ ký số / no signatures",
}


def _print(report: dict[str, Any]) -> None:
    output.stdout.print(f"Kết luận / Conclusion: {_CONCLUSIONS[report['conclusion']]}")
    output.stdout.print(f"SHA-256: {report['document_sha256']}   report {report['id']}")
    for index, signature in enumerate(report["signatures"], start=1):
        table = Table(title=f"Chữ ký {index} / signature {index}", show_header=False, title_justify="left")
        signer = signature["signer"] or {}
        rows = [
            ("Kết quả / indication", f"{signature['indication']} {signature['sub_indication'] or ''}".strip()),
            ("Người ký / signer", signer.get("common_name") or ""),
            ("Cơ quan / agency", signer.get("organization") or ""),
            ("Cấp / level", signature["level"]),
            ("Thời điểm ký / signing time", signature["claimed_signing_time"] or ""),
            ("Thời điểm được chứng minh / proven at", signature["best_signature_time"]),
            ("Phạm vi / coverage", f"{signature['coverage']}, {signature['modifications_after_signing']}"),
        ]
        for name, value in rows:
            table.add_row(name, str(value))
        for message in signature["messages"]:
            table.add_row(message["severity"], f"{message['vi']}\n{message['en']}")
        output.stdout.print(table)
