"""Quarterly rating rounds (街道评部门) on every event-store backend: opened, scored by the
streets, refused where they may not score, closed, published anonymously."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.application import GrievanceApp
from domain.errors import PermissionDeniedError, RoundStateError, ValidationError
from domain.model import SYSTEM, Action, Actor
from domain.ratings import OpenRound, RatingRound, RoundStatus, RoundStep, ScoreDepartment
from tests.conftest import SUPERVISOR, FakeClock, department

XUEYUANLU = department("st.xueyuanlu")
QINGHE = department("st.qinghe")
RATERS = {"st.xueyuanlu": ["hd.urban", "hd.transport"], "st.qinghe": ["hd.urban"]}
GOOD = {"responsiveness": 90, "cooperation": 80, "effectiveness": 70}


def opened(app: GrievanceApp, clock: FakeClock) -> RatingRound:
    result = app.handle_round(
        OpenRound(
            actor=SUPERVISOR,
            quarter="2026-Q4",
            deadline=clock.now + timedelta(days=10),
            raters=RATERS,
            command_id="open-q4",
        )
    )
    return app.get_round(result.round_id)


def score(app: GrievanceApp, r: RatingRound, who: Actor, dept: str, **kw: Any) -> None:
    scores = kw.pop("scores", GOOD)
    app.handle_round(
        ScoreDepartment(actor=who, round_id=r.id, department=dept, scores=scores, **kw)
    )


def test_a_round_is_opened_scored_closed_and_published_anonymously(
    app: GrievanceApp, clock: FakeClock
) -> None:
    r = opened(app, clock)
    assert r.status is RoundStatus.OPEN and r.items == [
        "responsiveness",
        "cooperation",
        "effectiveness",
    ]
    assert r.urge_at == clock.now + timedelta(days=8)  # 48 h before the deadline
    again = app.handle_round(
        OpenRound(
            actor=SUPERVISOR,
            quarter="2026-Q4",
            deadline=r.deadline,
            raters=RATERS,
            command_id="open-q4",
        )
    )
    assert again.replayed and again.round_id == r.id
    score(app, r, XUEYUANLU, "hd.urban", comment="配合积极")
    score(
        app,
        r,
        XUEYUANLU,
        "hd.urban",
        scores={"responsiveness": 100, "cooperation": 80, "effectiveness": 70},
        comment="更正后：配合积极",
    )
    score(
        app,
        r,
        QINGHE,
        "hd.urban",
        scores={"responsiveness": 60, "cooperation": 60, "effectiveness": 60},
    )
    assert app.get_round(r.id).missing() == {"st.xueyuanlu": ["hd.transport"]}
    app.handle_round(RoundStep(actor=SYSTEM, round_id=r.id, action=Action.URGE_ROUND))
    app.handle_round(RoundStep(actor=SUPERVISOR, round_id=r.id, action=Action.CLOSE_ROUND))
    # The workflow's own close after the supervisor's records nothing.
    late = app.handle_round(RoundStep(actor=SYSTEM, round_id=r.id, action=Action.CLOSE_ROUND))
    assert not late.recorded
    app.handle_round(RoundStep(actor=SYSTEM, round_id=r.id, action=Action.PUBLISH_ROUND))
    done = app.get_round(r.id)
    assert done.status is RoundStatus.PUBLISHED and done.urged == [["st.xueyuanlu"]]
    (urban,) = done.results or []
    assert urban["department"] == "hd.urban" and urban["raters"] == 2
    assert urban["items"] == {"responsiveness": 80.0, "cooperation": 70.0, "effectiveness": 65.0}
    assert urban["score"] == round((80 + 70 + 65) / 3, 2)
    assert urban["comments"] == [{"comment": "更正后：配合积极"}]  # the latest scores' comment
    assert "st." not in repr(urban)  # anonymous: no street next to a score or comment


def test_who_may_score_what_and_when(app: GrievanceApp, clock: FakeClock) -> None:
    r = opened(app, clock)
    with pytest.raises(ValidationError, match="not-one-of"):
        score(app, r, QINGHE, "hd.transport")  # not in its list
    with pytest.raises(ValidationError, match="out-of-range"):
        score(app, r, XUEYUANLU, "hd.urban", scores={**GOOD, "cooperation": 101})
    with pytest.raises(ValidationError, match="not-one-of"):
        score(app, r, XUEYUANLU, "hd.urban", scores={"responsiveness": 90})
    with pytest.raises(PermissionDeniedError):
        score(app, r, SUPERVISOR, "hd.urban")
    with pytest.raises(RoundStateError, match="round-not-closed"):
        app.handle_round(RoundStep(actor=SUPERVISOR, round_id=r.id, action=Action.PUBLISH_ROUND))
    app.handle_round(RoundStep(actor=SUPERVISOR, round_id=r.id, action=Action.CLOSE_ROUND))
    with pytest.raises(RoundStateError, match="round-not-open"):
        score(app, r, XUEYUANLU, "hd.urban")
    assert app.get_round(r.id).version == 2  # refusals recorded nothing


def test_a_round_needs_streets_as_raters_and_a_later_deadline(
    app: GrievanceApp, clock: FakeClock
) -> None:
    with pytest.raises(ValidationError, match="not-one-of"):
        app.handle_round(
            OpenRound(
                actor=SUPERVISOR,
                quarter="2026-Q4",
                deadline=clock.now + timedelta(days=1),
                raters={"hd.urban": ["hd.water"]},
            )
        )
    with pytest.raises(ValidationError, match="deadline-not-later"):
        app.handle_round(
            OpenRound(actor=SUPERVISOR, quarter="2026-Q4", deadline=clock.now, raters=RATERS)
        )
    with pytest.raises(PermissionDeniedError):
        app.handle_round(
            OpenRound(
                actor=XUEYUANLU,
                quarter="2026-Q4",
                deadline=clock.now + timedelta(days=1),
                raters=RATERS,
            )
        )
