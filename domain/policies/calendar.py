"""Business calendar: working hours, weekends, public holidays and make-up working days (调休).

Pure functions over data. "3 working days" from a moment becomes the end of the
third working day after it; "2 working hours" walks through the working spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    timezone: str
    spans: tuple[tuple[time, time], ...]  # working spans of a working day, in order
    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days worked
    weekend: frozenset[int] = frozenset({5, 6})  # Monday is 0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> BusinessCalendar:
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
            holidays=frozenset(date.fromisoformat(d) for d in data.get("holidays", [])),
            makeup_workdays=frozenset(
                date.fromisoformat(d) for d in data.get("makeup_workdays", [])
            ),
            weekend=frozenset(data.get("weekend", [5, 6])),
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
            return self.end_of_day(day)
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return self.end_of_day(day)

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
