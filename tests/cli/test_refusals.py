"""Bad input and bad settings: each is refused with a non-zero exit and one short sentence on
stderr (no traceback), and leaves the certificates (database rows and `cert list --json`) and
the token's objects exactly as they were. The commands run in the refusal battery (see
refusal_cases.py); these tests check what each one did."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.cli import Deployment, Result, assert_one_sentence_error, assert_same_listing, assert_same_state

from .refusal_cases import DATA_CASES, SETTINGS_CASES, Battery

NO_ARGS_ROUGH_EDGE = (
    "cli/main.py main() prints format_message() of click's NoArgsIsHelpError, which is empty: "
    "\"error: ; see 'govsign --help'.\" on stderr after the help"
)
Refusals = Callable[[str], Battery]


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_input_is_refused_with_one_sentence_and_changes_nothing(
    deployment: Deployment, refusals: Refusals, case: str
) -> None:
    outcome = refusals(deployment.name).outcomes[case]
    assert_one_sentence_error(outcome.result, *outcome.mentions)
    assert_same_state(outcome.before, outcome.after)


@pytest.mark.parametrize("case", list(SETTINGS_CASES))
def test_bad_setting_is_refused_naming_it_and_changes_nothing(
    sqlite_deployment: Deployment, refusals: Refusals, case: str
) -> None:
    outcome = refusals(sqlite_deployment.name).outcomes[case]
    assert_one_sentence_error(outcome.result, *outcome.mentions)
    assert_same_state(outcome.before, outcome.after)


def test_refusals_leave_cert_list_unchanged(deployment: Deployment, refusals: Refusals) -> None:
    battery = refusals(deployment.name)
    assert_same_listing(battery.listing_before, battery.listing_after)
    assert len(battery.listing_after) == battery.certificate_rows


def test_refusal_exit_codes_distinguish_the_kind_of_error(sqlite_deployment: Deployment, refusals: Refusals) -> None:
    outcomes = refusals(sqlite_deployment.name).outcomes
    code = {name: outcome.result.returncode for name, outcome in outcomes.items()}
    assert code["malformed-csr"] == code["unknown-profile"] == code["generate-key-without-subject"]
    assert len({code["malformed-csr"], code["revoke-unknown-serial"], code["revoke-twice"]}) == 3
    assert len({code["unreachable-database"], code["bad-public-base-url"]}) == 2
    assert 70 not in code.values()


USAGE_CASES = {
    "unknown-revocation-reason": (("cert", "revoke", "abc", "--reason", "bogus"), "bogus"),
    "missing-required-option": (("cert", "issue", "--generate-key", "ec-p256", "--subject", "CN=X,C=VN"), "--profile"),
    "unknown-command": (("cert", "frobnicate"), "frobnicate"),
}


@pytest.fixture(scope="module")
def usage_errors(sqlite_deployment: Deployment) -> dict[str, tuple[Result, str]]:
    return {name: (sqlite_deployment.run(*args), mention) for name, (args, mention) in USAGE_CASES.items()}


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_usage_error_is_one_sentence_naming_the_problem(usage_errors: dict[str, tuple[Result, str]], case: str) -> None:
    result, mention = usage_errors[case]
    assert_one_sentence_error(result, mention)
    assert result.returncode == 2, result.describe()


def test_command_on_a_missing_data_dir_is_refused_and_creates_nothing(
    sqlite_deployment: Deployment, cli_workspace: Path
) -> None:
    missing = cli_workspace / "no-such-data-dir"
    result = sqlite_deployment.run("cert", "list", GOVSIGN_DATA_DIR=str(missing))
    assert_one_sentence_error(result, "govsign init")
    assert not missing.exists(), f"a read-only command created {sorted(p.name for p in missing.rglob('*'))}"


@pytest.mark.parametrize("args", [(), ("cert",)], ids=["govsign", "govsign-cert"])
def test_command_group_without_subcommand_shows_help_without_an_empty_error(
    sqlite_deployment: Deployment, args: tuple[str, ...]
) -> None:
    result = sqlite_deployment.run(*args)
    assert "Usage" in result.stdout, result.describe()
    message = result.stderr.strip().removeprefix("error:").strip()
    assert not message or len(message.split(";")[0].split()) >= 3, f"an empty error sentence: {result.stderr!r}"
