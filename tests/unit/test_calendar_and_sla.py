"""Business calendar and SLA policy: working days across holidays and 调休 make-up days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.policies import load_policies
from domain.policies.calendar import BusinessCalendar

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def calendar() -> BusinessCalendar:
    return load_policies().calendar


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def test_holiday_is_not_a_working_day_and_makeup_saturday_is(calendar: BusinessCalendar) -> None:
    assert not calendar.is_working_day(date(2026, 10, 5))  # Monday in the National Day week
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday 调休 make-up working day
    assert not calendar.is_working_day(date(2026, 11, 21))  # an ordinary Saturday
    assert calendar.is_working_day(date(2026, 11, 23))


def test_working_days_across_national_day_and_a_makeup_day(calendar: BusinessCalendar) -> None:
    # Wed 30 Sep + 7 working days: 1-7 Oct are holidays; Thu 8, Fri 9, Sat 10 (make-up),
    # Mon 12, Tue 13, Wed 14, Thu 15.
    assert calendar.add_working_days(local(2026, 9, 30, 16, 0), 7) == local(2026, 10, 15, 18, 0)


def test_working_days_without_the_makeup_day_would_end_later() -> None:
    data = {
        "timezone": "Asia/Shanghai",
        "working_hours": [{"start": "09:00", "end": "18:00"}],
        "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
    }
    plain = BusinessCalendar.from_data(data)
    assert plain.add_working_days(local(2026, 9, 30, 16, 0), 7) == local(2026, 10, 16, 18, 0)


def test_working_hours_skip_the_lunch_break(calendar: BusinessCalendar) -> None:
    assert calendar.add_working_time(local(2026, 11, 23, 11, 30), timedelta(hours=1)) == local(
        2026, 11, 23, 14, 0
    )


def test_working_hours_carry_over_the_weekend(calendar: BusinessCalendar) -> None:
    # Friday 17:00 + 2 working hours: one hour on Friday, one on Monday morning.
    assert calendar.add_working_time(local(2026, 11, 20, 17, 0), timedelta(hours=2)) == local(
        2026, 11, 23, 10, 0
    )


def test_start_on_a_weekend_counts_from_the_next_working_morning(
    calendar: BusinessCalendar,
) -> None:
    assert calendar.add_working_time(local(2026, 11, 21, 10, 0), timedelta(hours=1)) == local(
        2026, 11, 23, 10, 0
    )


def test_zero_working_days_on_a_holiday_is_the_end_of_the_next_working_day(
    calendar: BusinessCalendar,
) -> None:
    assert calendar.add_working_days(local(2026, 10, 3, 10, 0), 0) == local(2026, 10, 8, 18, 0)


def test_working_time_between_counts_only_working_spans(calendar: BusinessCalendar) -> None:
    elapsed = calendar.working_time_between(local(2026, 11, 20, 17, 0), local(2026, 11, 23, 10, 0))
    assert elapsed == timedelta(hours=2)


def test_naive_datetimes_are_refused(calendar: BusinessCalendar) -> None:
    from domain.errors import ValidationError

    with pytest.raises(ValidationError):
        calendar.add_working_days(datetime(2026, 11, 23, 10, 0), 1)


def test_sla_uses_the_earlier_of_class_and_urgency_windows() -> None:
    sla = load_policies().sla
    start = local(2026, 11, 23, 10, 0)
    normal = sla.assignment_deadlines("B", "normal", start)
    urgent = sla.assignment_deadlines("B", "urgent", start)
    assert normal.sign_for == local(2026, 11, 23, 12, 0)  # 2 working hours
    assert normal.resolve == local(2026, 12, 2, 18, 0)  # 7 working days
    assert urgent.sign_for == start + timedelta(minutes=30)
    assert urgent.resolve == start + timedelta(hours=24)


def test_profiles_differ_in_scale() -> None:
    start = local(2026, 11, 23, 10, 0)
    drill = load_policies("drill").sla.assignment_deadlines("B", "normal", start)
    demo = load_policies("demo").sla.assignment_deadlines("B", "normal", start)
    assert drill.sign_for - start == timedelta(seconds=4)
    assert demo.resolve - start == timedelta(minutes=10)


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match="drill"):
        load_policies("nonsense")


# ------------------------------------------------------------ holiday data coverage


def test_the_calendar_knows_the_years_its_holiday_data_covers(
    calendar: BusinessCalendar,
) -> None:
    assert calendar.years == frozenset({2026})
    assert calendar.covers(date(2026, 12, 31)) and not calendar.covers(date(2027, 1, 1))
    assert calendar.uncovered_years(local(2026, 12, 1, 9), local(2028, 2, 1, 9)) == [2027, 2028]
    # Without a ``years`` list the years its dates fall in; a date outside them is refused.
    data = {"timezone": "Asia/Shanghai", "working_hours": [{"start": "09:00", "end": "18:00"}]}
    assert BusinessCalendar.from_data(data | {"holidays": ["2026-10-01"]}).years == {2026}
    assert BusinessCalendar.from_data(data).years == frozenset()
    with pytest.raises(ValueError, match="2027"):
        BusinessCalendar.from_data(data | {"years": [2026], "holidays": ["2027-01-01"]})


def test_a_deadline_reaching_a_year_without_data_is_remembered_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = load_policies().calendar  # its own record of reached years
    assert calendar.add_working_days(local(2026, 11, 23, 10), 15) == local(2026, 12, 14, 18)
    assert calendar.uncovered_years_reached() == []
    with caplog.at_level("WARNING", logger="domain.policies.calendar"):
        # 15 working days set mid-December: into January 2027, which has no data.
        assert calendar.add_working_days(local(2026, 12, 15, 10), 15).year == 2027
        calendar.add_working_time(local(2026, 12, 31, 17), timedelta(hours=3))
        calendar.add_working_days(local(2026, 12, 20, 10), 30)
    assert calendar.uncovered_years_reached() == [2027]
    warnings = [r.getMessage() for r in caplog.records if "year_not_covered" in r.getMessage()]
    assert warnings == ["calendar.year_not_covered year=2027 covered=2026"]


def test_coverage_compares_the_data_with_the_deadlines_set_now() -> None:
    from domain.policies.coverage import calendar_coverage

    june = calendar_coverage(load_policies().sla, local(2026, 6, 1, 10))
    assert june.ok and june.covered_years == [2026] and june.horizon.year == 2026
    december = calendar_coverage(load_policies().sla, local(2026, 12, 15, 10))
    assert not december.ok and december.uncovered_years == [2027]
    assert december.horizon > local(2027, 1, 1, 0)
    # The drill profile's windows are seconds: nothing reaches the next year.
    assert calendar_coverage(load_policies("drill").sla, local(2026, 12, 15, 10)).ok
