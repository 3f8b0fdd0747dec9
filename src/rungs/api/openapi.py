"""The OpenAPI document says what the routes really do: who may call them, and how they fail.

FastAPI's generated document is completed here: the Bearer scheme on the routes that need a
token (with the least role in the description), the JSON error bodies Rungs answers with
(`{"detail": ..., "field": ...}` rather than FastAPI's default 422 shape), and the media types
of the routes that do not answer JSON.

`/docs` is Swagger UI served by Rungs itself (`install_docs`): its script, style sheet and icon
come from the `swagger-ui-bundle` package under `/docs/static/`, so the page works on a host
with no way out to the internet (FastAPI's own page loads them from a CDN).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from rungs.api.auth import required_role

__all__ = ["DOCS", "DOCS_PAGES", "DOCS_STATIC", "ERROR_SCHEMA", "install_docs", "install_openapi"]

DOCS = "/docs"  # the app is created with docs_url=None: this module serves the page
DOCS_STATIC = f"{DOCS}/static/"  # its assets
DOCS_PAGES = frozenset({DOCS, f"{DOCS}/oauth2-redirect"})

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {"type": "string"}
MEDIA = {  # (method, path) -> the media type of the 200 answer
    ("get", "/v1/policy"): "application/yaml",
    ("get", "/v1/schedules/{sid}.ics"): "text/calendar",
    ("get", "/metrics"): "text/plain",
}
REQUEST_MEDIA = {("put", "/v1/policy"): "application/yaml"}
WHY = {
    "400": "The body is not valid JSON (or not UTF-8), or the URL holds a NUL character",
    "401": "No API token, or an unknown or revoked one",
    "403": "The token's role is too weak for this route (or to act as another person)",
    "404": "Not found",
    "409": "The case's state does not allow this",
    "413": "Request body too large",
    "414": "Request URL (path and query) too long",
    "415": "The body is not sent as JSON (Content-Type: application/json)",
    "422": "Invalid input; `field` names the field at fault",
    "429": "Rate limit exceeded; see Retry-After",
}


def _error(code: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": WHY[code],
        "content": {"application/json": {"schema": _ERROR}},
    }
    if code == "429":
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return out


def _complete(schema: dict[str, Any]) -> dict[str, Any]:
    comps = schema.setdefault("components", {})
    comps.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    comps.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`rungs token create --role ROLE --name NAME`).",
    }
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: dict[str, Any] = op["responses"]
            invalid = op.pop("x-rungs-invalid-status", None)
            auto = responses.get("422", {}).get("content", {}).get("application/json", {})
            if "HTTPValidationError" in str(auto.get("schema", "")):
                if invalid is not None:
                    del responses["422"]  # the route answers invalid input in its own format
                else:
                    responses["422"] = _error("422")
            responses.setdefault("414", _error("414"))  # any request: the URL limit
            responses.setdefault("400", _error("400"))  # any request: %00 in the URL
            json_body = "requestBody" in op and (method, path) not in REQUEST_MEDIA
            if json_body and invalid is None:  # a JSON body sent as something else
                responses.setdefault("415", _error("415"))
            need = required_role(method.upper(), path)
            if need is not None:
                op["security"] = [{"bearer": []}]
                note = f"Needs an API token with role **{need}** or stronger."
                op["description"] = f"{op.get('description', '').strip()}\n\n{note}".strip()
                codes = ["401", "403", "404", "413", "422", "429"]
                if method != "get":
                    codes.append("409")
                for code in codes:
                    responses.setdefault(code, _error(code))
            media = MEDIA.get((method, path))
            if media is not None:
                ok = responses.setdefault("200", {"description": "OK"})
                ok["content"] = {media: {}}  # text, not JSON: no schema to hold it to
            media = REQUEST_MEDIA.get((method, path))
            if media is not None:
                op["requestBody"] = {"required": True, "content": {media: {"schema": _TEXT}}}
    return schema


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with the completed document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) with its assets from `/docs/static/`, no CDN; no ReDoc page (its
    script would come from a CDN)."""
    static = DOCS_STATIC.rstrip("/")
    redirect = f"{DOCS}/oauth2-redirect"
    app.mount(static, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static}/swagger-ui.css",
            swagger_favicon_url=f"{root}{static}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{redirect}",
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(DOCS, docs, include_in_schema=False)
    app.add_route(redirect, oauth2_redirect, include_in_schema=False)
