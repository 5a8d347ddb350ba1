"""The OpenAPI document: FastAPI's, plus the problem+json responses every route can give;
and the pages that show it (``/docs``, ``/redoc``).

Routers document their domain problems; what the middleware and auth add everywhere
(401/403 on secured routes, 413 on bodies, 422 as problem+json rather than FastAPI's
default schema, 429 everywhere) is filled in here, for every router included in the app.

The pages' scripts and styles are the copies of Swagger UI and ReDoc the ``fastapi-offline``
package ships, served from this origin at ``/docs/assets`` (no third-party origin sees the
page the dashboard keeps its token on).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.pages import environment
from api.problems import PROBLEM_JSON
from api.schemas import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_GENERIC = {
    "401": "Missing, invalid or revoked bearer token",
    "403": "This role or department may not do this",
    "413": "Request body too large",
    "422": "Invalid request: the fields and why",
    "429": "Too many requests: wait for Retry-After seconds",
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
    for path, methods in schema.get("paths", {}).items():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/open311/"):  # a 429 in Open311's own error format
                responses.setdefault("429", {"description": _GENERIC["429"]})
            if "422" in responses:
                responses["422"] = _problem(responses["422"].get("description") or _GENERIC["422"])
            wanted = ["429"]
            if operation.get("security"):
                wanted += ["401", "403"]
            if "requestBody" in operation:
                wanted += ["413", "422"]
            for code in wanted:
                responses.setdefault(code, _problem(_GENERIC[code]))
    app.openapi_schema = schema
    return schema


class _Assets(StaticFiles):
    """The viewers' files: large and versioned with the package, revalidated each load."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` from this origin (create the app with ``docs_url=None,
    redoc_url=None``)."""
    app.mount("/docs/assets", _Assets(packages=[("fastapi_offline", "static")]), name="docs")

    def page(viewer: str) -> HTMLResponse:
        html = (
            environment()
            .get_template("docs.html")
            .render(
                html_lang="en",
                title=f"{app.title} · {viewer}",
                viewer=viewer,
                openapi_url=app.openapi_url,
            )
        )
        return HTMLResponse(html)

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return page("swagger")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return page("redoc")
