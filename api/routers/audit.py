"""Audit (督办/考核) for supervisors, readable by operators: the full history of a grievance,
its state as of any moment, who was late, its printable case file, and the hash chains.

Everything here judges from the event store itself; a projection only names which
grievances a department's lateness has to judge. Citizens' names and
phone numbers are masked for everyone but the dispatch centre's operators.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import structlog
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from api import casefile
from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, ServicesDep, guarded
from api.i18n import choose_language
from api.problems import ProblemError
from api.routers.common import check_period, problems, set_version
from api.schemas import (
    FIRST_YEAR,
    LAST_YEAR,
    AuditEvents,
    DeadlineAt,
    DeadlineRecordPublic,
    DepartmentLateness,
    GrievanceLateness,
    GrievanceStateAt,
    Moment,
    VerifyReport,
    sane_year,
)
from api.views import audit_event, grievance_public
from domain import audit
from domain.application import GrievanceApp
from domain.errors import GrievanceNotFoundError
from domain.evidence import sha256_hex
from domain.integrity import verify_chain
from projections.deadlines import row_record

router = APIRouter(prefix="/v1/audit", tags=["audit"])
log = structlog.get_logger("api.audit")

# Who may read the audit (``Read.AUDIT``), and the problems of a read about one grievance.
AUDIT_READ: dict[str, Any] = {"responses": problems(401, 403, 404, 422), **guarded(Read.AUDIT)}
WORKFLOW_HISTORY_TIMEOUT = 8.0  # seconds the case file waits for Temporal


def _invalid(message: str, name: str, **params: Any) -> ProblemError:
    """422 naming the query parameter ``name``; the words are the catalogue's ``message``."""
    return ProblemError("invalid-request", message=message, params=params, field=name)


def _undecodable(grievance_id: UUID) -> ProblemError:
    """A stored event that no longer decodes (edited behind the application's back): a
    problem+json pointing at the verification."""
    log.error("stored event does not decode", grievance_id=str(grievance_id))
    return ProblemError(
        "internal-error", message="event-undecodable", params={"grievance_id": str(grievance_id)}
    )


def _history(app: GrievanceApp, grievance_id: UUID) -> list[Any]:
    """The grievance's stored events, decoded."""
    try:
        return list(app.history(grievance_id))
    except MapperDeserialisationError:
        raise _undecodable(grievance_id) from None


class RenderedEvents:
    """Each stored event as ``audit_events`` writes it (its JSON, and the case number the
    intake carries), kept by what was stored: a grievance read again decodes and
    serialises only its new events. The key is the stored row itself (id, version, topic,
    the stored bytes), so an event edited behind the application's back is decoded afresh.
    Least recently used entries go first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[Any, ...], tuple[str, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def render(
        self, app: GrievanceApp, stored: StoredEvent, *, unmasked: bool
    ) -> tuple[str, str | None]:
        s = stored
        key = (s.originator_id, s.originator_version, s.topic, s.state, unmasked)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        event = app.mapper.to_domain_event(stored)
        rendered = (
            audit_event(event, unmasked=unmasked).model_dump_json(),
            getattr(event, "number", None),  # the intake's
        )
        with self._lock:
            self._entries[key] = rendered
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return rendered

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


RENDERED = RenderedEvents(maxsize=10_000)  # ~1 KiB an entry


def deadline_record(record: audit.DeadlineRecord) -> DeadlineRecordPublic:
    seconds = record.late_by_seconds
    late_by = audit.late_by_text(seconds) if seconds else None
    return DeadlineRecordPublic.model_validate(record).model_copy(update={"late_by": late_by})


# ------------------------------------------------------------------- history


@router.get("/grievances/{grievance_id}/events", response_model=AuditEvents, **AUDIT_READ)
def audit_events(grievance_id: UUID, app: AppDep, who: AnyPrincipal) -> Response:
    """Every stored event of a grievance, in order, with its chain hash, from the event store."""
    stored = app.stored_history(grievance_id)  # read once
    try:
        rendered = [RENDERED.render(app, s, unmasked=who.sees_personal_data) for s in stored]
    except MapperDeserialisationError:
        raise _undecodable(grievance_id) from None
    # The JSON of AuditEvents (FastAPI would dump, validate and dump a returned model
    # again), its events spliced in as rendered.
    empty = AuditEvents(grievance_id=grievance_id, number=rendered[0][1] or "", events=[])
    head = empty.model_dump_json().removesuffix("[]}")
    body = head + "[" + ",".join(json for json, _ in rendered) + "]}"
    return Response(body, media_type="application/json")


# --------------------------------------------------------------- time travel


@router.get("/grievances/{grievance_id}/state", response_model=GrievanceStateAt, **AUDIT_READ)
def audit_state(
    grievance_id: UUID,
    app: AppDep,
    who: AnyPrincipal,
    request: Request,
    response: Response,
    as_of: Annotated[
        Moment | None,
        Query(description="ISO-8601 instant with a zone: the state after the last event then"),
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> GrievanceStateAt:
    """The grievance as it was at a version or an instant, rebuilt from its events, with the
    deadlines open (and overdue) at that moment."""
    if as_of is not None and version is not None:
        raise _invalid("as-of-or-version", "as_of")
    events = _history(app, grievance_id)
    if as_of is not None:
        upto = [e for e in events if e.timestamp <= as_of]
        if not upto:
            raise GrievanceNotFoundError(grievance_id=str(grievance_id), as_of=as_of.isoformat())
        last: Any = upto[-1]
        # Deadlines are on the business clock: the last event's instant plus the time
        # since it was recorded (exactly as_of when the clock is the wall clock).
        judged_at: datetime = last.at + (as_of - last.timestamp)
    elif version is not None:
        if version > len(events):
            raise _invalid("version-beyond", "version", count=len(events))
        upto = events[:version]
        judged_at = getattr(upto[-1], "at")  # noqa: B009 (grievance events carry it)
    else:
        upto = events
        judged_at = app.clock()
    grievance = audit.replay(upto)
    assert grievance is not None
    set_version(response, grievance.version)
    return GrievanceStateAt(
        as_of=as_of,
        version=grievance.version,
        judged_at=judged_at,
        deadlines=[DeadlineAt.model_validate(d) for d in audit.deadlines_at(grievance, judged_at)],
        grievance=grievance_public(
            grievance, unmasked=who.sees_personal_data, lang=choose_language(request)
        ),
    )


# -------------------------------------------------------------- who was late


@router.get("/grievances/{grievance_id}/lateness", response_model=GrievanceLateness, **AUDIT_READ)
def grievance_lateness(grievance_id: UUID, app: AppDep) -> GrievanceLateness:
    """Every deadline the grievance had: met or not, by how long, and what followed."""
    now = app.clock()
    events = _history(app, grievance_id)
    grievance = audit.replay(events)
    assert grievance is not None
    return GrievanceLateness(
        grievance_id=grievance.id,
        number=grievance.number,
        judged_at=now,
        deadlines=[deadline_record(r) for r in audit.deadline_history(events, now)],
    )


def _bound(text: str | None, field: str, app: GrievanceApp, *, end: bool) -> datetime | None:
    """A period bound: an aware ISO-8601 instant, or a local day (``to`` includes its day)."""
    if text is None:
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if not sane_year(day):
                raise _out_of_years(field)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), app.policies.calendar.tz).astimezone(UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("instant-invalid", field, field=field) from None
    if moment.tzinfo is None:
        raise _invalid("instant-needs-zone", field, field=field)
    if not sane_year(moment):
        raise _out_of_years(field)
    return moment.astimezone(UTC)


def _out_of_years(field: str) -> ProblemError:
    return _invalid("instant-out-of-range", field, field=field, first=FIRST_YEAR, last=LAST_YEAR)


@router.get(
    "/departments/{code}/lateness",
    response_model=DepartmentLateness,
    responses=problems(401, 403, 422),
    **guarded(Read.AUDIT),
)
def department_lateness(
    code: str,
    app: AppDep,
    read_models: ReadModelsDep,
    date_from: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="local day or instant (default: 30 days)"),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(alias="to", max_length=40, description="local day (inclusive) or instant"),
    ] = None,
) -> DepartmentLateness:
    """The deadlines of one department due in the period that it missed, and what followed."""
    now = app.clock()
    end = _bound(date_to, "to", app, end=True) or now
    start = _bound(date_from, "from", app, end=False) or end - timedelta(days=30)
    check_period(start, end, "from", "to")
    # The deadline read model's records (one indexed query), and the grievances the log
    # holds past its position judged from their own events.
    rows, after = read_models.department_deadlines(code, start, end, now)
    recorded = [row_record(row) for row in rows]
    missed = app.department_lateness(code, start, end, now, recorded=recorded, after=after)
    return DepartmentLateness(
        department=code,
        date_from=start,
        date_to=end,
        judged_at=now,
        missed=[deadline_record(r) for r in missed],
    )


# ------------------------------------------------------------------ case file


@router.get(
    "/grievances/{grievance_id}/casefile",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "the printable case file"},
        **problems(401, 403, 404, 422),
    },
    **guarded(Read.AUDIT),
)
async def audit_casefile(
    grievance_id: UUID, services: ServicesDep, who: AnyPrincipal, request: Request
) -> HTMLResponse:
    """案卷: the printable case file (timeline, deadlines, urges, escalations, extensions,
    feedback, and the Temporal workflow's timers and activities)."""
    app = services.app
    lang = choose_language(request)

    def gather() -> casefile.CaseFile:
        events = _history(app, grievance_id)
        now = app.clock()
        thumbnails: dict[str, bytes] = {}
        for event in events:
            thumb = getattr(event, "thumbnail_sha256", None)
            data = services.blobs.get(thumb) if thumb and services.blobs is not None else None
            if data is not None and sha256_hex(data) == thumb:
                thumbnails[thumb] = data
        return casefile.CaseFile(
            events=events,
            deadlines=audit.deadline_history(events, now),
            broken=verify_chain(grievance_id, events),  # the events just read, not again
            generated_at=now,
            directory=app.policies.directory,
            tz=app.policies.calendar.tz,
            thumbnails=thumbnails,
        )

    case = await anyio.to_thread.run_sync(gather)
    workflow_id = f"grievance-{grievance_id}"
    workflow = casefile.WorkflowSection(workflow_id)
    if services.workflow_history is None:
        workflow.error = "not_configured"
    else:
        try:
            workflow.entries = await asyncio.wait_for(
                services.workflow_history(workflow_id), WORKFLOW_HISTORY_TIMEOUT
            )
            workflow.found = workflow.entries is not None
        except Exception as error:  # Temporal down or slow: the case file says so
            log.warning("workflow history unavailable", workflow_id=workflow_id, error=repr(error))
            workflow.error = "unreachable"
    page = casefile.render(case, workflow, lang=lang, unmasked=who.sees_personal_data)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------- tamper evidence


def _warn_each(message: str, findings: Sequence[Any], *fields: str) -> None:
    """One warning per finding of the verify run, naming its grievance and ``fields``."""
    for item in findings:
        log.warning(
            message,
            grievance_id=str(item.grievance_id),
            **{name: getattr(item, name) for name in fields},
        )


@router.get("/verify", response_model=VerifyReport, **AUDIT_READ)
def verify(
    app: AppDep,
    services: ServicesDep,
    grievance: Annotated[UUID | None, Query(description="check only this grievance")] = None,
) -> VerifyReport:
    """Recompute the hash chains; report the first broken link of each grievance."""
    if grievance is not None:
        link = app.verify_grievance(grievance)
        checked, broken = 1, [link] if link is not None else []
    else:
        checked, broken = app.verify_all()
    _warn_each("hash chain broken", broken, "version", "event_type")
    objects, bad = (
        app.verify_objects(services.blobs, grievance) if services.blobs is not None else (0, [])
    )
    _warn_each("attachment object bad", bad, "version", "sha256", "reason")
    return VerifyReport(
        intact=not broken and not bad,
        grievances_checked=checked,
        broken=broken,
        objects_checked=objects,
        bad_objects=bad,
    )
