"""intake_kpis: per local day and request type, grievances received and answered at intake.

直办率 (the share answered at intake, ``projections.kpis.direct_answer_rate``) is about the
intake of a period: both counts are on the local day the grievance was received.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.grievance import Grievance
from projections.db import Datastore, Dialect, reading, rows
from projections.fold import Folded
from projections.kpis import INTAKE_COUNTS, with_direct_answer_rate
from projections.views import CountsView, Prior, count_columns

TABLE = "intake_kpis"
UNKNOWN = ""  # the request type of a grievance filed without one


class IntakeKpisView(CountsView):
    """intake_kpis: per local day and request type, received and answered at intake."""

    projection_name = TABLE
    cost = 4
    keys = ("day", "request_type")
    count_names = INTAKE_COUNTS
    columns = count_columns(keys, INTAKE_COUNTS)
    indexes: ClassVar = {"day": "day"}

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        if isinstance(event, Grievance.Received):
            count = "received"
        elif isinstance(event, Grievance.AnsweredAtIntake):
            count = "answered_at_intake"
        else:
            return
        g = folded.grievance
        kind = getattr(g, "request_type", None) or UNKNOWN  # states kept before it existed
        self.add((self.local_day_of(g.received_at), kind), count)


def intake_kpis(
    datastore: Datastore, dialect: Dialect, date_from: date, date_to: date
) -> dict[str, Any]:
    """The period's intake counts and 直办率, in all and per request type."""
    sums = ", ".join(f"SUM({name}) AS {name}" for name in INTAKE_COUNTS)
    with reading(datastore) as c:
        c.execute(
            dialect.sql(
                f"SELECT request_type, {sums} FROM {{{TABLE}}} "
                "WHERE day >= :date_from AND day <= :date_to GROUP BY request_type "
                "ORDER BY request_type",
                **{TABLE: TABLE},
            ),
            {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()},
        )
        found = rows(c)
    total = dict.fromkeys(INTAKE_COUNTS, 0)
    by_type = []
    for row in found:
        counts = {name: int(row[name] or 0) for name in INTAKE_COUNTS}
        for name in INTAKE_COUNTS:
            total[name] += counts[name]
        by_type.append(
            {"request_type": row["request_type"] or None, **with_direct_answer_rate(counts)}
        )
    return {**with_direct_answer_rate(total), "by_request_type": by_type}
