"""The OpenAPI document says what the routes really do: who may call them, and how they fail.

FastAPI's generated document is completed here: the Bearer scheme on the routes that need a
token (with the least role in the description), the JSON error bodies Rungs answers with
(`{"detail": ..., "field": ...}` rather than FastAPI's default 422 shape), and the media types
of the routes that do not answer JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from rungs.api.auth import required_role

__all__ = ["install_openapi", "ERROR_SCHEMA"]

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
    "403": "The token's role is too weak for this route",
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
