"""How far behind the event log a follower is, in seconds: the age of the oldest event
it has not processed yet. The projector's and the relay's metrics both ask this."""

from __future__ import annotations

from typing import Any


def recorded_at(recorder: Any, mapper: Any, notification_id: int) -> float | None:
    """When the first event at or after ``notification_id`` was recorded (Unix seconds);
    ids can have gaps (a rolled-back PostgreSQL insert), hence "at or after"."""
    found = recorder.select_notifications(notification_id, 1)
    if not found:
        return None
    return float(mapper.to_domain_event(found[0]).timestamp.timestamp())


class EventAges:
    """``recorded_at`` with a small cache: scrapes ask for the same pending event often."""

    def __init__(self, recorder: Any, mapper: Any) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._cache: dict[int, float | None] = {}

    def lag_seconds(self, position: int, newest: int, now: float) -> float:
        """Age of the oldest event after ``position`` (0 when caught up)."""
        if newest <= position:
            return 0.0
        first = position + 1
        if first not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[first] = recorded_at(self._recorder, self._mapper, first)
        at = self._cache[first]
        return max(0.0, now - at) if at is not None else 0.0
