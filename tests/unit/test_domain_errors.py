"""Domain errors are codes with parameters, and ERROR_CODES lists every code raised."""

from __future__ import annotations

import ast
import copy
import pickle
import re
from pathlib import Path

import pytest

import domain
from domain import errors as domain_errors
from domain.errors import (
    ERROR_CODES,
    AssignmentStateError,
    DomainError,
    IllegalTransitionError,
    ValidationError,
)

_CODE = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
# Calls whose positional string arguments are error or reason codes.
_CODED_CALLS = ("Error", "refusal", "ensure_allowed")


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def codes_raised_in_domain() -> set[str]:
    found: set[str] = set()
    for path in Path(domain.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _callee(node).endswith(_CODED_CALLS):
                for arg in node.args:
                    found.update(s for s in _strings(arg) if _CODE.match(s))
    return found


def test_every_code_the_domain_raises_is_listed() -> None:
    raised = codes_raised_in_domain()
    assert len(raised) > 40  # the scan does see the domain's raise sites
    assert raised - ERROR_CODES == set()


_DOMAIN_ERRORS = {
    name
    for name, value in vars(domain_errors).items()
    if isinstance(value, type) and issubclass(value, DomainError)
}


def test_other_layers_raise_domain_errors_with_listed_codes_too() -> None:
    """A domain error raised by the read side or the API must have a catalogue entry too."""
    root = Path(domain.__file__).parent.parent
    for package in ("projections", "api", "workflows", "closeloop"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _callee(node) in _DOMAIN_ERRORS and node.args:
                    for code in _strings(node.args[0]):
                        assert code in ERROR_CODES, f"{path}:{node.lineno}: {code!r}"


def test_no_prose_in_domain_error_calls() -> None:
    """A domain error's first argument is a code, never a sentence or an f-string."""
    for path in Path(domain.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and _callee(node).endswith("Error")
                and _callee(node) not in ("ValueError", "TypeError", "KeyError")
                and node.args
            ):
                first = node.args[0]
                assert not isinstance(first, ast.JoinedStr), f"{path}:{node.lineno}"
                for text in _strings(first):
                    assert _CODE.match(text), f"{path}:{node.lineno}: {text!r}"


def test_an_error_is_a_code_with_parameters() -> None:
    error = ValidationError("text-too-long", field="text", max_len=4000)
    assert (error.code, error.field) == ("text-too-long", "text")
    assert error.params == {"field": "text", "max_len": 4000}
    assert str(error) == "text-too-long field='text', max_len=4000"
    assert error.message == str(error)
    assert DomainError().code == "domain-error"
    assert ValidationError().code == "invalid-command"


def test_refusals_never_offer_the_refused_action() -> None:
    error = IllegalTransitionError(
        "resolve", "in_progress", ["resolve", "return"], "waiting-for-assisting", departments=["x"]
    )
    assert error.allowed == ["return"]
    assert error.params == {
        "action": "resolve",
        "status": "in_progress",
        "allowed": ["return"],
        "reason": "waiting-for-assisting",
        "departments": ["x"],
    }
    error.allowed = ["resolve", "report_progress"]
    assert error.params["allowed"] == ["report_progress"]
    state = AssignmentStateError("sign_for", "g.1", "signed_for", "in_progress", ["sign_for"])
    assert (state.code, state.assignment_state, state.allowed) == (
        "illegal-assignment-transition",
        "signed_for",
        [],
    )


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_codes_are_kebab_case(code: str) -> None:
    assert _CODE.match(code)


def test_errors_survive_copy_and_pickle() -> None:
    errors = [
        ValidationError("text-too-long", field="text", max_len=4000),
        IllegalTransitionError("resolve", "in_progress", ["return"], "waiting-for-assisting"),
        AssignmentStateError("sign_for", "g.1", "signed_for", "in_progress", ["resolve"]),
        DomainError(),
    ]
    for error in errors:
        for clone in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
            assert type(clone) is type(error)
            assert (clone.code, clone.params, str(clone)) == (error.code, error.params, str(error))
