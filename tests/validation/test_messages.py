"""The report's message catalog: every message in both languages, Vietnamese in NFC, the same
facts in each, and complete sentences."""

from __future__ import annotations

import string
import unicodedata

import pytest

from govsign.validation.messages import CATALOG, Severity, message


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_each_message_says_the_same_in_both_languages(code: str) -> None:
    severity, en, vi = CATALOG[code]
    assert isinstance(severity, Severity)
    assert _fields(en) == _fields(vi), code
    assert unicodedata.normalize("NFC", vi) == vi
    assert en.rstrip().endswith((".", ")", "}")) and vi.rstrip().endswith((".", ")", "}")), code
    assert any(ord(c) > 127 for c in vi), f"{code}: the Vietnamese text has no Vietnamese letters"


def test_facts_are_filled_in_and_the_result_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Bộ Tư pháp")
    filled = message("timestamp.proves", tsa=decomposed, time="2026-12-03T09:00:00+07:00")
    assert "Bộ Tư pháp" in filled.vi and unicodedata.is_normalized("NFC", filled.vi)
    assert "2026-12-03T09:00:00+07:00" in filled.en
