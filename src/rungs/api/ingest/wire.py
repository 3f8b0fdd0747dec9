"""What the sender formats share: bounded strings, strict bodies, Rungs' own answer, the
helpers that read free-form details into a case, and validation errors as sentences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Annotations",
    "IngestAnswer",
    "Labels",
    "Strict",
    "clean",
    "detail",
    "details_text",
    "bounded",
    "message",
    "where",
]


def bounded(most: int, least: int = 0) -> Any:
    """A bounded string type, `Annotated[str, Field(...)]` (a type expression, hence `Any`)."""
    return Annotated[str, Field(min_length=least, max_length=most)]


Labels = Annotated[dict[bounded(200, 1), bounded(4096)], Field(max_length=200)]
Annotations = Annotated[dict[bounded(200, 1), bounded(65_536)], Field(max_length=200)]


class Strict(BaseModel):
    """A sender's body: unknown fields are refused by name; aliases (`class`) accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class IngestAnswer(BaseModel):
    # Rungs' own answer to one alert (events, each alert of an Alertmanager webhook); no
    # docstring, which would become its description in /openapi.json

    status: str = "accepted"
    action: str
    dedup_key: str
    case: str | None = None
    new: bool = False
    applied: bool = False


def clean(d: Mapping[str, Any]) -> dict[str, Any]:
    """The fields worth keeping: empty values are left out of the case."""
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def details_text(details: object) -> str:
    """Free-form details as description lines (`key: value`), or their text."""
    if isinstance(details, Mapping):
        return "\n".join(f"{k}: {v}" for k, v in details.items())
    return "" if details is None else str(details)


def detail(details: object, name: str) -> str | None:
    """A short string value of the details (`customer`, `category`), or None."""
    if isinstance(details, Mapping):
        v = details.get(name)
        if isinstance(v, str) and 0 < len(v) <= 200:
            return v
    return None


def where(e: Mapping[str, Any]) -> str:
    """The dotted field of a validation error (`body` for the body itself)."""
    return ".".join(str(p) for p in e["loc"] if p != "body") or "body"


def message(e: Mapping[str, Any]) -> str:
    """A validation error as one sentence naming its field."""
    at = where(e)
    if e["type"] == "json_invalid":
        return "the body is not valid JSON"
    if e["type"] == "extra_forbidden":
        return f"'{at}' is not a known field"
    if e["type"] == "missing":
        return f"'{at}' is missing"
    return f"{at}: {e['msg']}"
