"""What every command group shares: opening the services, the operator's identity, progress, and
the choices and options of the command line."""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from govsign.cli import output
from govsign.config import load_settings
from govsign.errors import InvalidInputError
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


class KeyChoice(StrEnum):
    rsa2048 = "rsa2048"
    rsa3072 = "rsa3072"
    rsa4096 = "rsa4096"
    ec_p256 = "ec-p256"
    ec_p384 = "ec-p384"


def actor() -> str:
    """How the audit log names the operator: ``operator:USER``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"operator:{user}"


def operator() -> Requester:
    """The operator at the CLI, as the services see them."""
    return Requester.operator(actor())


@contextmanager
def opened(*, initialize: bool = False) -> Iterator[Services]:
    """The services of the configured deployment, closed when the command ends."""
    services = Services.open(load_settings(), initialize=initialize)
    try:
        yield services
    finally:
        services.close()


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr that shows what the HSM is doing (key generation takes a while)."""
    if not enabled or not output.stderr.is_terminal:
        yield lambda message: None
        return
    with output.stderr.status("Working…") as status:
        yield lambda message: status.update(message + "…")


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the {what} file {path}: {exc.strerror or exc}.") from None


def parse_time(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time with a time zone, or None."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{option} must be an ISO 8601 time such as 2026-11-01T08:00:00+07:00.") from None
    if moment.tzinfo is None:
        raise InvalidInputError(f"{option} needs a time zone, such as +07:00 or Z.")
    return moment


def yes(value: bool) -> str:
    return "yes" if value else "no"
