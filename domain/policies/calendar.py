"""Business calendar: working hours, weekends, public holidays and make-up working days (调休).

Pure functions over data. "3 working days" from a moment becomes the end of the
third working day after it; "2 working hours" walks through the working spans.

The data covers the years whose State Council notice it holds (``years``). A deadline
walked into a year outside them counts that year's holidays as working days: the
calendar remembers such years (``uncovered_years_reached``, for ``/readyz``) and logs a
warning once per year.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.errors import ValidationError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    timezone: str
    spans: tuple[tuple[time, time], ...]  # working spans of a working day, in order
    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days worked
    weekend: frozenset[int] = frozenset({5, 6})  # Monday is 0
    years: frozenset[int] = frozenset()  # years whose holidays and 调休 the data holds
    # Years outside ``years`` that deadlines have reached in this process (mutable on
    # purpose: a record of use, not part of the calendar's value).
    _reached: set[int] = field(default_factory=set, compare=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> BusinessCalendar:
        """Read ``calendar.json``. ``years`` lists the years its holidays cover (without
        it: the years its dates fall in); a date outside those years is refused."""
        holidays = frozenset(date.fromisoformat(d) for d in data.get("holidays", []))
        makeup = frozenset(date.fromisoformat(d) for d in data.get("makeup_workdays", []))
        dated = {d.year for d in holidays | makeup}
        years = frozenset(int(y) for y in data["years"]) if "years" in data else frozenset(dated)
        if not dated <= years:
            raise ValueError(f"holiday dates in {sorted(dated - years)}, not in years {years}")
        spans = tuple(
            (time.fromisoformat(s["start"]), time.fromisoformat(s["end"]))
            for s in data["working_hours"]
        )
        for start, end in spans:
            if start >= end:
                raise ValueError(f"working span {start}-{end} is empty")
        return cls(
            timezone=data["timezone"],
            spans=spans,
            holidays=holidays,
            makeup_workdays=makeup,
            weekend=frozenset(data.get("weekend", [5, 6])),
            years=years,
        )

    # ------------------------------------------------------------- coverage

    def covers(self, day: date) -> bool:
        """Whether the data holds ``day``'s year (its holidays and make-up days)."""
        return day.year in self.years

    def uncovered_years(self, start: datetime, end: datetime) -> list[int]:
        """The years from ``start`` to ``end`` (local dates) the data does not hold."""
        first, last = self._local(start).year, self._local(end).year
        return [y for y in range(first, last + 1) if y not in self.years]

    def uncovered_years_reached(self) -> list[int]:
        """Years without data that deadlines computed by this calendar have reached."""
        return sorted(self._reached)

    def _note(self, start: datetime, end: datetime) -> None:
        for year in self.uncovered_years(start, end):
            if year not in self._reached:
                self._reached.add(year)
                _log.warning(
                    "calendar.year_not_covered year=%d covered=%s",
                    year,
                    ",".join(str(y) for y in sorted(self.years)) or "none",
                )

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValidationError("naive-datetime", field="timestamp")
        return moment.astimezone(self.tz)

    def _at(self, day: date, t: time) -> datetime:
        return datetime.combine(day, t, tzinfo=self.tz)

    def end_of_day(self, day: date) -> datetime:
        return self._at(day, self.spans[-1][1])

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after the day of ``start``."""
        if days < 0:
            raise ValueError("days must not be negative")
        day = self._local(start).date()
        if days == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        end = self.end_of_day(day)
        self._note(start, end)
        return end

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """Walk ``duration`` of working time forward from ``start`` through the spans."""
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        local = self._local(start)
        remaining = duration
        day = local.date()
        cursor = local
        for _ in range(3660):  # ten years of days: a bound, not a limit anyone reaches
            if self.is_working_day(day):
                for span_start, span_end in self.spans:
                    begin = max(cursor, self._at(day, span_start))
                    end = self._at(day, span_end)
                    if begin >= end:
                        continue
                    available = end - begin
                    if remaining <= available:
                        self._note(start, begin + remaining)
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
            cursor = self._at(day, time(0))
        raise ValueError("calendar has no working time in the next ten years")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed between two moments (zero if end is before start)."""
        if end <= start:
            return timedelta(0)
        a, b = self._local(start), self._local(end)
        total = timedelta(0)
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                for span_start, span_end in self.spans:
                    lo = max(a, self._at(day, span_start))
                    hi = min(b, self._at(day, span_end))
                    if hi > lo:
                        total += hi - lo
            day += timedelta(days=1)
        return total
