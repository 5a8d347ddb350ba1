"""Whether the business calendar's holiday data reaches as far as the deadlines do.

The calendar holds the holidays and 调休 make-up days of the years whose State Council
notice it was given. Deadlines set now reach some weeks ahead (15 working days from
mid-December already reach January): a year they reach without data counts its
holidays as working days, so ``/readyz`` and ``closeloop info`` report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.policies.sla import SlaPolicy, Window


@dataclass(frozen=True, slots=True)
class CalendarCoverage:
    covered_years: list[int]  # years the data holds
    horizon: datetime  # the latest instant a deadline set now can reach
    uncovered_years: list[int]  # years without data up to the horizon or already reached

    @property
    def ok(self) -> bool:
        return not self.uncovered_years


def deadline_horizon(sla: SlaPolicy, start: datetime) -> datetime:
    """The latest deadline the profile's windows give from ``start``, plus the lapse
    before a missed one escalates to level 2."""
    profile = sla.profile
    windows: list[Window] = [
        window
        for pair in (*profile.classes.values(), *profile.urgency.values())
        for window in (pair.sign_for, pair.resolve)
    ]
    windows += [profile.report_in, profile.redispatch, profile.feedback, profile.extension_max]
    latest = max(window.after(start, sla.calendar) for window in windows)
    return sla.level2_at(latest)


def calendar_coverage(sla: SlaPolicy, now: datetime) -> CalendarCoverage:
    calendar = sla.calendar
    horizon = deadline_horizon(sla, now)
    uncovered = set(calendar.uncovered_years(now, horizon))
    uncovered.update(calendar.uncovered_years_reached())
    return CalendarCoverage(
        covered_years=sorted(calendar.years),
        horizon=horizon,
        uncovered_years=sorted(uncovered),
    )
