"""The OpenAPI document: FastAPI's, plus the problem+json responses every route can give.

Routers document their domain problems; what the middleware and auth add everywhere
(401/403 on secured routes, 413 on bodies, 422 as problem+json rather than FastAPI's
default schema) is filled in here, for every router included in the app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_JSON
from api.schemas import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_GENERIC = {
    "401": "Missing, invalid or revoked bearer token",
    "403": "This role or department may not do this",
    "413": "Request body too large",
    "422": "Invalid request: the fields and why",
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem(responses["422"].get("description") or _GENERIC["422"])
            wanted = []
            if operation.get("security"):
                wanted += ["401", "403"]
            if "requestBody" in operation:
                wanted += ["413", "422"]
            for code in wanted:
                responses.setdefault(code, _problem(_GENERIC[code]))
    app.openapi_schema = schema
    return schema
