"""Policy what-if for supervisors: what a proposed SLA profile and/or calendar would have
done to a past period, per department, next to what happened. Reads the recorded events
(``domain.whatif``); never writes one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import AppDep, Read, guarded
from api.i18n import choose_language
from api.routers.common import check_period, problems
from api.whatif_schemas import WhatIfPublic, WhatIfRequest, what_if_answer

router = APIRouter(prefix="/v1", tags=["supervisors"])


@router.post(
    "/what-if",
    response_model=WhatIfPublic,
    responses=problems(401, 403, 422),
    **guarded(Read.KPIS),
)
def policy_what_if(body: WhatIfRequest, app: AppDep, request: Request) -> WhatIfPublic:
    """Deadlines met / missed and 响应率 per department: as recorded vs under a proposal."""
    check_period(body.date_from, body.date_to, "date_from", "date_to")
    return what_if_answer(app, body, choose_language(request))
