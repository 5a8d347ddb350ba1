"""The 三率 on a hand-computed example, and the cursor's refusal of junk."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from projections.kpis import COUNTS, resolution_rate, response_rate, satisfaction_rate, with_rates
from projections.queries import decode_cursor, encode_cursor


def counts(**given: int) -> dict[str, int]:
    return {**dict.fromkeys(COUNTS, 0), **given}


def test_three_rates_hand_computed() -> None:
    # 40 assignments dispatched, 34 signed for in time: 34/40 = 0.85.
    # 25 callbacks reached the citizen; 20 said solved: 20/25 = 0.8;
    # 12 satisfied + 6 basically satisfied (7 unsatisfied): 18/25 = 0.72.
    example = counts(
        dispatched=40,
        signed_for=37,
        signed_for_in_time=34,
        feedback_received=25,
        resolved_by_citizen=20,
        satisfied=12,
        basically_satisfied=6,
        unsatisfied=7,
    )
    assert response_rate(example) == 0.85
    assert resolution_rate(example) == 0.8
    assert satisfaction_rate(example) == 0.72
    result = with_rates(example)
    assert (result["response_rate"], result["resolution_rate"], result["satisfaction_rate"]) == (
        0.85,
        0.8,
        0.72,
    )
    assert result["dispatched"] == 40


def test_rates_round_to_four_digits() -> None:
    assert response_rate(counts(dispatched=3, signed_for_in_time=2)) == 0.6667


def test_empty_denominator_is_none_not_zero() -> None:
    result = with_rates(counts())
    assert result["response_rate"] is None
    assert result["resolution_rate"] is None
    assert result["satisfaction_rate"] is None


def test_cursor_round_trip_and_junk() -> None:
    cursor = encode_cursor("2026-11-23T09:30:00.000000Z", "abc")
    assert decode_cursor(cursor, 2) == ["2026-11-23T09:30:00.000000Z", "abc"]
    for junk in ("not-base64!!", encode_cursor("only-one"), "eyJhIjoxfQ"):
        with pytest.raises(ValidationError):
            decode_cursor(junk, 2)
