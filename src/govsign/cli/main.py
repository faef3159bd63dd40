"""The admin CLI, ``govsign``: one module per command group, all over the same services as the
API. Errors are one sentence on stderr and a non-zero exit."""

from __future__ import annotations

import json
import logging
import os
import sys

import click
import typer
from typer.exceptions import TyperException

from govsign.cli import output
from govsign.cli.approval import approval_app
from govsign.cli.audit import audit_app
from govsign.cli.ca import ca_app, crl_app
from govsign.cli.cert import cert_app
from govsign.cli.credential import credential_app
from govsign.cli.directory import agency_app, client_app
from govsign.cli.hsm import hsm_app
from govsign.cli.init import init
from govsign.cli.serve import serve
from govsign.cli.verify import verify
from govsign.errors import ErrorKind, GovsignError

EXIT_CODES = {
    ErrorKind.INVALID_INPUT: 2,
    ErrorKind.POLICY_VIOLATION: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UNAVAILABLE: 5,
    ErrorKind.CONFIGURATION: 6,
    ErrorKind.INTERNAL: 70,
    ErrorKind.UNAUTHENTICATED: 7,
    ErrorKind.FORBIDDEN: 7,
    ErrorKind.RATE_LIMITED: 5,
}

EXIT_CODE_HELP = (
    "Exit codes: 0 success; 1 a verification that is not valid (verify, audit verify); 2 bad input or refused "
    "by policy; 3 not found; 4 conflict with the current state; 5 unavailable (HSM, database) or rate-limited; "
    "6 configuration; 7 authentication or permission; 70 internal error; 130 aborted."
)

app = typer.Typer(
    name="govsign",
    help="Administer the govsign certificate authority (keys in a PKCS#11 HSM).",
    epilog=EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from govsign import __version__

        typer.echo(f"govsign {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Administer the govsign certificate authority (keys in a PKCS#11 HSM)."""


app.command()(init)
for group, name in (
    (ca_app, "ca"),
    (cert_app, "cert"),
    (hsm_app, "hsm"),
    (audit_app, "audit"),
    (crl_app, "crl"),
    (agency_app, "agency"),
    (client_app, "client"),
    (credential_app, "credential"),
    (approval_app, "approval"),
):
    app.add_typer(group, name=name)
app.command()(serve)
app.command()(verify)


# -- entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # whatever a command writes (data dir, exports, PEM files) is the operator's alone
    logging.basicConfig(
        level=os.environ.get("GOVSIGN_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments

    def fail(kind: str, message: str, code: int) -> None:
        """One sentence on stderr (a JSON object under --json), then the exit code."""
        if as_json:
            sys.stderr.write(
                json.dumps({"error": kind, "message": message, "exit_code": code}, ensure_ascii=False) + "\n"
            )
        else:
            output.stderr.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(code)

    try:
        result = app(args=arguments, standalone_mode=False, prog_name="govsign")
    except GovsignError as exc:
        fail(exc.kind.value, exc.message, EXIT_CODES.get(exc.kind, 1))
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
    except (typer.Abort, click.exceptions.Abort):
        fail("aborted", "Aborted.", 130)
    except (TyperException, click.ClickException) as exc:
        # Usage errors (unknown command or option, bad value): one sentence, like every error.
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        message = " ".join(str(message).split()).rstrip(".") or "No command given"
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", None) or "govsign"
        fail("usage", f"{message}; see '{command} --help'.", getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        logging.getLogger("govsign.cli").debug("unexpected error", exc_info=True)
        fail(
            "internal",
            "An internal error stopped the command; nothing was committed. Set GOVSIGN_LOG_LEVEL=DEBUG for details.",
            70,
        )
    if isinstance(result, int) and result:
        sys.exit(result)
