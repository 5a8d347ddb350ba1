"""The 三率 (response, resolution and satisfaction rates): each formula written once, here.

The counts come from the ``department_kpis`` read model (see README, "三率 formulas"):

- response rate (响应率) = signed_for_in_time / dispatched
  (of the assignments dispatched to the department in the period, the share it signed
  for by the sign-for deadline);
- resolution rate (解决率) = resolved_by_citizen / feedback_received
  (of the callbacks that reached the citizen, the share where the citizen said the
  problem is solved);
- satisfaction rate (满意率) = (satisfied + basically_satisfied) / feedback_received.

Of the dispatch centre's intake (the ``intake_kpis`` read model, per request type):

- direct-answer rate (直办率) = answered_at_intake / received
  (of the grievances received in the period, the share the operator settled on the
  call from the knowledge base, never dispatched).

A rate with an empty denominator is ``None`` (nothing to judge), never 0 or 1.
"""

from __future__ import annotations

from collections.abc import Mapping

COUNTS: tuple[str, ...] = (
    "dispatched",
    "signed_for",
    "signed_for_in_time",
    "returned",
    "resolved",
    "resolved_in_time",
    "overdue",
    "escalated",
    "feedback_received",
    "resolved_by_citizen",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
)

INTAKE_COUNTS: tuple[str, ...] = ("received", "answered_at_intake")

RATE_DIGITS = 4


def _rate(numerator: int, denominator: int) -> float | None:
    if denominator <= 0:
        return None
    return round(numerator / denominator, RATE_DIGITS)


def response_rate(counts: Mapping[str, int]) -> float | None:
    """响应率 = signed_for_in_time / dispatched."""
    return _rate(counts["signed_for_in_time"], counts["dispatched"])


def resolution_rate(counts: Mapping[str, int]) -> float | None:
    """解决率 = resolved_by_citizen / feedback_received."""
    return _rate(counts["resolved_by_citizen"], counts["feedback_received"])


def satisfaction_rate(counts: Mapping[str, int]) -> float | None:
    """满意率 = (satisfied + basically_satisfied) / feedback_received."""
    return _rate(counts["satisfied"] + counts["basically_satisfied"], counts["feedback_received"])


def with_rates(counts: Mapping[str, int]) -> dict[str, int | float | None]:
    """The counts plus the three rates computed from them."""
    result: dict[str, int | float | None] = {key: int(counts.get(key) or 0) for key in COUNTS}
    full = {key: int(counts.get(key) or 0) for key in COUNTS}
    result["response_rate"] = response_rate(full)
    result["resolution_rate"] = resolution_rate(full)
    result["satisfaction_rate"] = satisfaction_rate(full)
    return result


def direct_answer_rate(counts: Mapping[str, int]) -> float | None:
    """直办率 = answered_at_intake / received."""
    return _rate(counts["answered_at_intake"], counts["received"])


def with_direct_answer_rate(counts: Mapping[str, int]) -> dict[str, int | float | None]:
    """The intake counts plus 直办率."""
    full = {key: int(counts.get(key) or 0) for key in INTAKE_COUNTS}
    return {**full, "direct_answer_rate": direct_answer_rate(full)}
