"""A small driver that walks a grievance through the loop on a GrievanceApp."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.application import GrievanceApp
from domain.grievance import Grievance
from domain.model import AssignmentRole
from tests.conftest import OPERATOR, department, make_grievance


@dataclass
class Case:
    app: GrievanceApp
    id: UUID

    @property
    def g(self) -> Grievance:
        return self.app.get_grievance(self.id)

    def aid(self, role: AssignmentRole = AssignmentRole.LEAD, department: str | None = None) -> str:
        """The newest assignment of this role (and department) in the current round."""
        found = [
            a
            for a in self.g.current_assignments(role)
            if department is None or a.department == department
        ]
        assert found, f"no {role.value} assignment"
        return found[-1].id

    def dept(self, assignment_id: str):  # type: ignore[no-untyped-def]
        return department(self.g.assignment(assignment_id).department)


def new_case(app: GrievanceApp, category: str | None = "SF02", **overrides: object) -> Case:
    case = Case(app, make_grievance(app, **overrides))
    if category:
        app.classify_grievance(case.id, OPERATOR, category=category)
    return case


def dispatched_case(
    app: GrievanceApp,
    category: str = "SF02",
    lead: str | None = None,
    assisting: list[str] | None = None,
) -> Case:
    case = new_case(app, category)
    app.dispatch_grievance(case.id, OPERATOR, lead=lead, assisting=assisting)
    return case


def resolved_case(app: GrievanceApp, category: str = "SF02") -> Case:
    case = dispatched_case(app, category)
    work_through(case)
    return case


def work_through(case: Case) -> None:
    """Assisting departments sign for and complete their parts; then the lead resolves."""
    app = case.app
    for a in case.g.current_assignments(AssignmentRole.ASSISTING):
        app.sign_for(a.id, department(a.department))
        app.complete_part(a.id, department(a.department), account="协办部分已完成")
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    app.resolve(lead, case.dept(lead), account="已现场处理完毕，并告知居民。")


def load_stored_events(app: GrievanceApp, path: Path) -> dict[str, Any]:
    """Insert the rows of a recorded file (``events``: ``originator_id``,
    ``originator_version``, ``topic``, ``state`` as an earlier closeloop stored them) into
    ``app``'s recorder, as they are; answers the file's data."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"].encode(),
            )
            for row in data["events"]
        ]
    )
    return data
