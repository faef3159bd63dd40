"""``govsign credential``: officials' second factors (sole control) and the images of visible
signatures, set at the RA desk."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from govsign.cli import output
from govsign.cli.common import JsonOption, opened, operator, read_file, yes
from govsign.errors import InvalidInputError

credential_app = typer.Typer(
    help="Officials' signing credentials: second factors for sole control.", no_args_is_help=True
)

OfficialSerial = Annotated[str, typer.Argument(help="Serial number (hex) of the official's certificate.")]


@credential_app.command("enrol-totp")
def credential_enrol_totp(serial: OfficialSerial, json_output: JsonOption = False) -> None:
    """Give an official a new TOTP seed (replacing any earlier one), shown once: only to the official."""
    with opened() as services:
        credential, enrolment = services.sole_control.enrol_totp(serial, operator())
    if json_output:
        output.print_json({"credential": credential, "secret": enrolment.secret_base32, "otpauth_uri": enrolment.uri})
        return
    output.stdout.print(f"New TOTP seed for credential {credential}, shown only now; enter it in the official's app:")
    output.stdout.print(enrolment.secret_base32, highlight=False, markup=False)
    output.stdout.print(enrolment.uri, highlight=False, markup=False)


@credential_app.command("set-pin")
def credential_set_pin(
    serial: OfficialSerial,
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from the first line of stdin.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Set (or reset, at the RA desk) an official's PIN; the official types it, twice."""
    if pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    else:
        pin = getpass.getpass("The official's new PIN: ")
        if getpass.getpass("Again: ") != pin:
            raise InvalidInputError("The two PINs differ.")
    with opened() as services:
        services.sole_control.set_pin(serial, pin, operator())
    if json_output:
        output.print_json({"credential": serial.replace(":", "").lower(), "pin_set": True})
        return
    output.stdout.print("The PIN is set.")


@credential_app.command("set-stamp-image")
def credential_set_stamp_image(
    serial: Annotated[str, typer.Argument(help="Serial number (hex) of the official's or agency's certificate.")],
    image: Annotated[Path, typer.Argument(help="PNG with a transparent background: the seal or the signature.")],
    width_mm: Annotated[
        float | None,
        typer.Option("--width-mm", help="Its width on paper in millimetres (a seal's diameter), 5 to 150."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Store the image the credential's visible signatures show (Decree 30)."""
    data = read_file(image, "stamp image")
    with opened() as services:
        digest = services.stamp_images.set(serial, data, operator(), width_mm=width_mm)
    if json_output:
        output.print_json({"credential": serial, "image_sha256": digest, "width_mm": width_mm})
        return
    output.stdout.print(f"The stamp image of credential {serial} is set (SHA-256 {digest}).")


@credential_app.command("factors")
def credential_factors(serial: OfficialSerial, json_output: JsonOption = False) -> None:
    """Which second factors an official's credential has (never the factors)."""
    with opened() as services:
        status = services.sole_control.factor_status(serial, operator())
    data = {
        "credential": status.credential,
        "totp": status.totp,
        "pin": status.pin,
        "locked_until": output.iso_utc(status.locked_until),
    }
    if json_output:
        output.print_json(data)
        return
    locked = f", locked until {data['locked_until']}" if status.locked_until else ""
    output.stdout.print(f"Credential {status.credential}: TOTP {yes(status.totp)}, PIN {yes(status.pin)}{locked}.")
