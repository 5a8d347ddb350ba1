"""deadline_records: every deadline every grievance ever had, judged as it was met.

One row per deadline over its life (``domain.audit.DeadlineRecord``): its owner, when it
was due (and before extensions moved it), how it ended (met, met_late, returned,
superseded, cancelled, lapsed; ``open`` while it runs) and what followed it (urges,
escalations, extension requests). The rows are stepped event by event with the audit
replay's own ``DeadlineJudge``, so a department's lateness is one indexed query instead of
a replay of every grievance it ever had; an open row is judged against the asking
instant by the reader (``judged_open``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, ClassVar
from uuid import UUID

from domain.audit import (
    DeadlineJudge,
    DeadlineKey,
    DeadlineRecord,
    FollowUp,
    open_deadline_map,
)
from domain.grievance import Grievance
from domain.model import Deadline
from projections.db import Cursor, iso, parse_iso
from projections.fold import Folded, State
from projections.views import Prior, ReadModelView

OPEN = "open"


def _follow_ups(items: list[FollowUp]) -> str:
    if not items:
        return "[]"
    return json.dumps(
        [{**asdict(f), "at": iso(f.at)} for f in items], ensure_ascii=False, sort_keys=True
    )


def record_row(grievance_id: str, seq: int, record: DeadlineRecord) -> dict[str, Any]:
    return {
        "grievance_id": grievance_id,
        "seq": seq,
        "number": record.number,
        "kind": record.kind,
        "assignment_id": record.assignment_id,
        "department": record.department,
        "due": iso(record.due),
        "original_due": iso(record.original_due),
        "outcome": record.outcome,
        "closed_at": iso(record.closed_at),
        "late_by_seconds": record.late_by_seconds,
        "follow_ups": _follow_ups(record.follow_ups),
    }


def row_record(row: dict[str, Any]) -> DeadlineRecord:
    due = parse_iso(row["due"])
    assert due is not None
    return DeadlineRecord(
        grievance_id=UUID(row["grievance_id"]),
        number=row["number"],
        kind=row["kind"],
        assignment_id=row["assignment_id"],
        department=row["department"],
        due=due,
        outcome=row["outcome"],
        closed_at=parse_iso(row["closed_at"]),
        late_by_seconds=float(row["late_by_seconds"] or 0.0),
        follow_ups=[
            FollowUp(**{**item, "at": parse_iso(item["at"])})
            for item in json.loads(row["follow_ups"] or "[]")
        ],
        original_due=parse_iso(row["original_due"]),
    )


class DeadlineRecordsView(ReadModelView):
    """deadline_records: every deadline with its owner, due, outcome and follow-ups."""

    projection_name = "deadline_records"
    cost = 37
    columns = (
        "grievance_id TEXT NOT NULL, seq INTEGER NOT NULL, number TEXT NOT NULL, "
        "kind TEXT NOT NULL, assignment_id TEXT, department TEXT, due TEXT NOT NULL, "
        "original_due TEXT, outcome TEXT NOT NULL, closed_at TEXT, "
        "late_by_seconds REAL NOT NULL DEFAULT 0, follow_ups TEXT NOT NULL, "
        "PRIMARY KEY (grievance_id, seq)"
    )
    indexes: ClassVar = {"department_due": "department, due", "open": "grievance_id, outcome"}

    observes = True
    # Per grievance touched by the batch: (event, its grievance after it, the open
    # deadlines then), in order; judged in ``write``, where the open rows can be read.
    steps: dict[str, list[tuple[Any, Grievance, dict[DeadlineKey, Deadline]]]]

    def begin(self) -> None:
        self.steps = {}

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        g = folded.grievance
        self.steps.setdefault(folded.key, []).append((event, g, open_deadline_map(g)))

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        steps, self.steps = self.steps, {}
        if not steps:
            return
        open_rows, last_seq = self._open_rows(c, list(steps))
        rows: list[dict[str, Any]] = []
        for gid, events in steps.items():
            seqs: dict[int, int] = {}  # id(record) → its row's seq
            judge = DeadlineJudge()
            for seq, row in open_rows.get(gid, []):
                record = row_record(row)
                judge.open[(record.kind, record.assignment_id)] = record
                seqs[id(record)] = seq
            following = last_seq.get(gid, 0)
            for event, after, after_open in events:
                judge.step(event, after, after_open)
                for record in judge.open.values():
                    if id(record) not in seqs:
                        following += 1
                        seqs[id(record)] = following
            for record in [*judge.finished, *judge.open.values()]:
                rows.append(record_row(gid, seqs[id(record)], record))
        self.upsert(c, self.projection_name, ("grievance_id", "seq"), rows)

    def _open_rows(
        self, c: Cursor, grievance_ids: list[str]
    ) -> tuple[dict[str, list[tuple[int, dict[str, Any]]]], dict[str, int]]:
        """The open rows and the highest seq of each of these grievances."""
        found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        last: dict[str, int] = {}
        for row in self.select_for(
            c,
            "SELECT * FROM {deadline_records} "
            "WHERE grievance_id IN ({ids}) ORDER BY grievance_id, seq",
            grievance_ids,
        ):
            gid, seq = row["grievance_id"], int(row["seq"])
            last[gid] = max(last.get(gid, 0), seq)
            if row["outcome"] == OPEN:
                found.setdefault(gid, []).append((seq, dict(row)))
        return found, last
