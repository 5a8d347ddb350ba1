"""The role table in ``api/README.md`` is the rule in force: it equals the roles each route
really admits (its ``RoleCheck`` dependency, or for Open311 its ``x-roles``), and a command
route admits exactly what the domain's ``ACTION_ROLES`` gives its action, minus SYSTEM.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant

from api.app import create_app
from api.deps import RoleCheck, roles_of
from api.metrics import flat_routes
from domain.model import Action, Role
from domain.rules import ACTION_ROLES

README = Path(__file__).resolve().parents[2] / "api" / "README.md"
COLUMNS = (Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT, Role.OPEN311)
PUBLIC = "public"
Key = tuple[str, str]  # (method, path template)
API_PATHS = ("/v1/", "/open311/")
PROBES = ("/healthz", "/readyz")


def _path(path: str) -> str:
    path = path.replace("{id}", "{grievance_id}").replace("{aid}", "{assignment_id}")
    if path.startswith("/open311/") or path in ("/healthz", "/readyz"):
        path = path.replace("/requests/{grievance_id}.", "/requests/{service_request_id}.")
        return path
    return "/v1" + path


def _routes_of(cell: str) -> list[Key]:
    """``METHOD /a/b/c · d`` stands for /a/b/c and /a/b/d; several such in backticks."""
    found: list[Key] = []
    for quoted in re.findall(r"`([^`]+)`", cell):
        method, _, rest = quoted.partition(" ")
        if method not in ("GET", "POST"):
            continue  # e.g. `?department=`
        first, *others = [part.strip() for part in rest.split(" · ")]
        stem = first.rsplit("/", 1)[0]
        found += [(method, _path(p)) for p in (first, *(f"{stem}/{o}" for o in others))]
    return found


def readme_table() -> dict[Key, frozenset[Role] | str]:
    """Each route of the table with the roles that have anything in their column."""
    table: dict[Key, frozenset[Role] | str] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not line.startswith("| ") or "`" not in cells[0]:
            continue
        marks = cells[1:]
        roles: frozenset[Role] | str = (
            PUBLIC
            if marks[0] == PUBLIC
            else frozenset(r for r, m in zip(COLUMNS, marks, strict=True) if m)
        )
        for key in _routes_of(cells[0]):
            assert key not in table, f"{key} is listed twice"
            table[key] = roles
    return table


def _role_check(dependant: Dependant) -> RoleCheck | None:
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleCheck):
            return sub.call
        found = _role_check(sub)
        if found is not None:
            return found
    return None


def app_routes() -> dict[Key, tuple[frozenset[Role] | str, dict[str, Any]]]:
    """Every documented route of the API (read off the app, so a router it includes later
    is in here too): what it admits, and its OpenAPI extras."""
    routes: dict[Key, tuple[frozenset[Role] | str, dict[str, Any]]] = {}
    app = create_app(lambda: None)  # type: ignore[arg-type,return-value]
    for route in flat_routes(app.routes):
        if getattr(route, "dependant", None) is None or not route.include_in_schema:
            continue  # static mounts, the OpenAPI document, /docs, /metrics
        if not route.path.startswith(API_PATHS) and route.path not in PROBES:
            continue  # the dashboard's and workbench's own pages
        if route.path.startswith("/open311/") and "/requests" not in route.path:
            continue  # discovery and the service catalogue are public
        extra = route.openapi_extra or {}
        check = _role_check(route.dependant)
        if check is not None:
            admits: frozenset[Role] | str = check.roles
        elif "x-roles" in extra:  # Open311 checks its api_key itself
            admits = frozenset(Role(r) for r in extra["x-roles"])
        else:
            admits = PUBLIC
        for method in route.methods:
            routes[(method, route.path)] = (admits, extra)
    return routes


def test_the_routers_are_the_apis_routes() -> None:
    spec = create_app(lambda: None).openapi()  # type: ignore[arg-type,return-value]
    served = {
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        for method in methods
        if path.startswith(("/v1/", "/open311/v2/requests")) or path in ("/healthz", "/readyz")
    }
    assert served == set(app_routes()), "the OpenAPI document and the app's routes differ"
    for (method, path), (_, extra) in app_routes().items():
        operation = spec["paths"][path][method.lower()]
        assert operation.get("x-roles") == extra.get("x-roles"), (method, path)


def test_the_readme_role_table_is_what_the_routes_admit() -> None:
    table = readme_table()
    routes = app_routes()
    assert set(table) == set(routes), "routes missing from the table, or listed but absent"
    wrong = {
        key: (table[key], admits) for key, (admits, _) in routes.items() if table[key] != admits
    }
    assert not wrong, wrong


def test_command_routes_admit_the_domains_roles_minus_system() -> None:
    sent: set[Action] = set()
    for key, (admits, extra) in app_routes().items():
        action = extra.get("x-action")
        if action is None:
            continue
        sent.add(Action(action))
        assert admits == ACTION_ROLES[Action(action)] - {Role.SYSTEM}, key
        assert admits == roles_of(Action(action)), key
    # Every command route declares its action (18 today: 8 dispatch centre, 7 department,
    # 3 supervisor); a route without one would escape this check.
    assert {Action.RECEIVE, Action.CLASSIFY, Action.SIGN_FOR, Action.ESCALATE} <= sent
    assert len(sent) >= 18


def test_openapi_names_each_routes_roles() -> None:
    for key, (admits, extra) in app_routes().items():
        if admits == PUBLIC:
            assert "x-roles" not in extra, key
        else:
            assert set(extra["x-roles"]) == {r.value for r in admits}, key
