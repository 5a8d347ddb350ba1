"""The one catalogue of words: complete for every code, one term per concept, no mixed languages."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from api.catalogue import LANGS, messages, reason_text, t
from api.problems import STATUSES, domain_problem, error_detail
from domain import errors, model
from domain.errors import (
    ERROR_CODES,
    REASON_CODES,
    AssignmentStateError,
    DomainError,
    IllegalTransitionError,
    ValidationError,
)
from domain.grievance import Grievance
from domain.model import ReasonCode
from tests.conftest import FakeClock

if TYPE_CHECKING:
    from tests.support.api import ApiHarness

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FILES = [ROOT / "api" / "locales" / f"{lang}.toml" for lang in LANGS]

# Synonyms the glossary replaced: one term per concept (改派时限, 区级督办, 已被取代 …).
BANNED = ("重新派单", "退单重新派单", "区级督查", "区督查", "已被替代", "退单待改派时限")

# Two English words in a row are prose; a code (hd.urban), an id or a header name is not.
ENGLISH_PROSE = re.compile(r"\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")

SAMPLE: dict[str, Any] = {
    "field": "citizen_phone",
    "max_len": 500,
    "value": "x1",
    "allowed": ["normal", "urgent"],
    "department": "hd.urban",
    "departments": ["hd.urban", "hd.water"],
    "returned_department": "hd.housing",
    "actor_department": "hd.water",
    "category": "UM01",
    "community": "xyl-01",
    "street": "xueyuanlu",
    "district": "hd",
    "grid": "xyl-01-g1",
    "deadline": "2026-12-01T08:00:00+00:00",
    "latest": "2026-12-08T08:00:00+00:00",
    "levels": [1, 2, 3],
    "level": 2,
    "outcome": "satisfied",
    "sla_class": "A",
    "kind": "resolve",
    "assignment_id": "0c5a.2",
    "number": "20261201-0001",
    "grievance_id": "0c5a",
    "version": 7,
    "expected": 6,
    "action": "resolve",
    "role": "department",
    "roles": ["operator", "supervisor"],
}


def sample_errors() -> list[DomainError]:
    """One error for every code the domain can raise, with plausible parameters."""
    made: list[DomainError] = []
    for code in sorted(errors.VALIDATION_CODES):
        made.append(ValidationError(code, **SAMPLE))
    for code in sorted(REASON_CODES):
        taken = ("action", "allowed", "status", "state", "assignment_id")
        params = {k: v for k, v in SAMPLE.items() if k not in taken}
        if code == "assignment-role":
            params |= {"role": "assisting", "roles": ["lead"]}
        made.append(
            IllegalTransitionError("resolve", "in_progress", ["report_progress"], code, **params)
        )
        made.append(
            AssignmentStateError(
                "resolve",
                "0c5a.1",
                "signed_for",
                "in_progress",
                ["report_progress"],
                code,
                **params,
            )
        )
    for kind in (
        errors.DomainError,
        errors.ValidationError,
        errors.NotAssignedError,
        errors.PermissionDeniedError,
        errors.NegativeListError,
        errors.UnknownAssignmentError,
        errors.GrievanceNotFoundError,
        errors.ConcurrentWriteError,
        errors.CommandIdReusedError,
        errors.StaleVersionError,
    ):
        made.append(kind(**SAMPLE))
    made.append(IllegalTransitionError("resolve", "closed", []))
    made.append(AssignmentStateError("sign_for", "0c5a.1", "superseded", "in_progress"))
    return made


def test_both_languages_have_the_same_keys() -> None:
    assert set(messages("zh")) == set(messages("en"))
    for lang in LANGS:
        empty = [k for k, v in messages(lang).items() if not v.strip()]
        assert empty == [], lang


def test_every_error_and_reason_code_and_problem_title_has_words() -> None:
    for lang in LANGS:
        words = messages(lang)
        for code in ERROR_CODES:
            key = f"reason.{code}" if code in REASON_CODES else f"error.{code}"
            assert key in words, (lang, code)
        for code in STATUSES:
            assert f"title.{code}" in words and f"error.{code}" in words, (lang, code)


def test_one_term_per_concept() -> None:
    for path in CATALOGUE_FILES:
        text = path.read_text(encoding="utf-8")
        for banned in BANNED:
            assert banned not in text, (path.name, banned)
    zh = messages("zh")
    assert zh["deadline_kind.redispatch"] == "改派时限"
    assert "区级督办" in zh["escalation_level.2"]


@pytest.mark.parametrize("error", sample_errors(), ids=lambda e: f"{type(e).__name__}-{e.code}")
def test_every_error_renders_in_one_language(error: DomainError) -> None:
    zh = error_detail(error, "zh")
    en = error_detail(error, "en")
    assert zh and en and zh != en
    assert "{" not in zh and "{" not in en
    assert not ENGLISH_PROSE.search(zh), zh
    assert not CJK.search(en), en
    for lang in LANGS:
        body = domain_problem(error, lang)
        assert body["status"] == STATUSES[body["code"]]
        assert not (
            CJK.search(body["title"]) if lang == "en" else ENGLISH_PROSE.search(body["title"])
        )


def test_the_blocking_reason_names_the_departments() -> None:
    error = AssignmentStateError(
        "resolve",
        "0c5a.1",
        "signed_for",
        "in_progress",
        ["report_progress", "request_extension"],
        "waiting-for-assisting",
        departments=["hd.fire", "cm.xyl-01"],
    )
    zh = error_detail(error, "zh")
    assert "「办结」" in zh and "区消防救援支队、石油大院社区居委会" in zh and "阶段反馈" in zh
    en = error_detail(error, "en")
    assert "District Fire and Rescue Detachment, xyl-01 community committee" in en
    assert "'resolve'" in en and "report progress" in en


def test_parameters_are_formatted_by_name() -> None:
    assert t("error.not-one-of", "en", field="urgency", allowed=[]) == (
        "Field 'urgency' must be one of: nothing."
    )
    assert t("reason.no-open-deadline", "zh", kind="sign_for") == "没有进行中的签收时限"
    assert t("error.deadline-too-late", "zh", latest="2026-12-01T00:00:00+00:00") == (
        "新时限不能晚于 2026-12-01 08:00。"
    )
    assert t("no.such-key", "zh") == "no.such-key"


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    # imported here: the catalogue's own tests need no application
    from tests.support.api import api_harness, sqlite_env

    async with api_harness(sqlite_env(tmp_path), tmp_path, clock) as harness:
        yield harness


async def test_an_early_resolve_names_the_pending_assisting_department(api: ApiHarness) -> None:
    body = await api.dispatched("PM02", lead="st.xueyuanlu", assisting=["hd.housing"])
    gid = body["id"]
    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    by_dept = {a["department"]: a["id"] for a in g["assignments"]}
    lead, assisting = by_dept["st.xueyuanlu"], by_dept["hd.housing"]
    for aid, dept in ((lead, "st.xueyuanlu"), (assisting, "hd.housing")):
        r = await api.post(f"/v1/assignments/{aid}/sign-for", "department", None, dept)
        assert r.status_code == 200, r.text

    path = f"/v1/assignments/{lead}/resolve"
    r = await api.post(path, "department", {"account": "完成"}, "st.xueyuanlu")
    assert r.status_code == 409, r.text
    zh = r.json()
    assert zh["code"] in ("illegal-transition", "illegal-assignment-transition")
    assert zh["current_status"] == "in_progress" and "resolve" not in zh["allowed_actions"]
    assert "区住房和城乡建设委员会" in zh["detail"] and "「办结」" in zh["detail"], zh
    assert not ENGLISH_PROSE.search(zh["detail"] + zh["title"]), zh

    r = await api.post(path + "?lang=en", "department", {"account": "done"}, "st.xueyuanlu")
    en = r.json()
    assert r.status_code == 409
    assert "District Housing and Urban-Rural Development Commission" in en["detail"], en
    assert not CJK.search(en["detail"] + en["title"]), en


@pytest.mark.parametrize("code", [c.value for c in ReasonCode])
def test_every_workflow_reason_renders_in_both_languages(code: str) -> None:
    event = SimpleNamespace(
        reason=None,
        reason_code=code,
        reason_params={
            "kind": "sign_for",
            "due": "2026-12-01T01:00:00+00:00",
            "department": "hd.housing",
            "level": 2,
            "reopen_count": 2,
        },
    )
    zh, en = reason_text(event, "zh"), reason_text(event, "en")
    assert zh and en and "{" not in zh + en
    assert not ENGLISH_PROSE.search(zh) and not CJK.search(en), (zh, en)
    if code == "deadline-lapsed":
        assert zh == "签收时限 2026-12-01 09:00 已过，二级：区级督办"


async def test_a_malformed_request_is_explained_field_by_field(api: ApiHarness) -> None:
    params = {"status": "nope", "limit": "many"}
    zh = (await api.get("/v1/grievances", "operator", params=params)).json()
    assert zh["code"] == "invalid-request" and len(zh["errors"]) == 2
    for error in zh["errors"]:
        assert not ENGLISH_PROSE.search(error["message"]), error
    assert "须为整数" in {e["message"] for e in zh["errors"]}
    en = (await api.get("/v1/grievances", "operator", params={**params, "lang": "en"})).json()
    assert "must be an integer" in {e["message"] for e in en["errors"]}
    assert not any(CJK.search(e["message"]) for e in en["errors"])


# Modules whose words must all come from the catalogue (docstrings and comments may cite terms).
WORDLESS_MODULES = [
    "api/casefile.py",
    "api/dashboard.py",
    "api/problems.py",
    "api/i18n.py",
    "api/pages.py",
    "api/catalogue.py",
    "api/open311/views.py",
    "api/middleware.py",
    "closeloop/commands/audit.py",
    "closeloop/commands/projections.py",
    "closeloop/commands/token.py",
    "closeloop/commands/up.py",
    "closeloop/commands/simulate.py",
]
SOURCE_DIRS = ["api", "domain", "workflows", "projections", "closeloop"]


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("module", WORDLESS_MODULES)
def test_labels_live_only_in_the_catalogue(module: str) -> None:
    chinese = [s for s in _string_literals(ROOT / module) if CJK.search(s)]
    assert chinese == [], module


def test_no_banned_synonym_anywhere_in_the_product() -> None:
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in (".py", ".toml", ".json", ".html", ".js", ".md"):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for banned in BANNED:
                assert banned not in text, (str(path.relative_to(ROOT)), banned)


VOCABULARIES = {
    "status": model.Status,
    "action": model.Action,
    "assignment_state": model.AssignmentState,
    "assignment_role": model.AssignmentRole,
    "role": model.Role,
    "deadline_kind": model.DeadlineKind,
    "satisfaction": model.Satisfaction,
    "outcome": model.Outcome,
    "decision": model.ArbitrationDecision,
    "channel": model.Channel,
    "urgency": model.Urgency,
    "event_reason": model.ReasonCode,
}


@pytest.mark.parametrize("section", sorted(VOCABULARIES))
def test_every_value_of_the_domain_has_a_label(section: str) -> None:
    for lang in LANGS:
        for member in VOCABULARIES[section]:
            assert f"{section}.{member.value}" in messages(lang), (lang, section, member)
    for level in model.ESCALATION_LEVELS:
        assert f"escalation_level.{level}" in messages("zh")


def test_every_event_of_the_grievance_has_a_label() -> None:
    events = [
        name
        for name, value in vars(Grievance).items()
        if isinstance(value, type) and issubclass(value, Grievance.Event) and name[0].isupper()
    ]
    abstract = {"Event", "Created", "Recorded", "AssignmentEvent"}
    for lang in LANGS:
        missing = [e for e in events if e not in abstract and f"event.{e}" not in messages(lang)]
        assert missing == [], lang
