"""Request bodies: strict (unknown fields are refused by name), every string bounded."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rungs.store.jsonbytes import finite

__all__ = ["OpenCase", "ActionBody", "AdvanceClock", "JsonValue", "Short", "Text"]

Short = Annotated[str, Field(min_length=1, max_length=200)]
JsonValue = Annotated[Any, AfterValidator(finite)]  # free-form JSON: no NaN or Infinity
Text = Annotated[str, Field(max_length=65_536)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenCase(Strict):
    customer: Short
    category: Short = "general"
    priority: Annotated[str, Field(pattern=r"^P[1-4]$", max_length=2)] = "P3"
    title: Annotated[str, Field(min_length=1, max_length=1024)]
    description: Text = ""
    fields: dict[Annotated[str, Field(max_length=100)], JsonValue] = Field(
        default_factory=dict, max_length=100
    )
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    dedup_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    site: Short | None = None
    device_group: Short | None = None
    device: Short | None = None


class ActionBody(Strict):
    by: Short | None = None
    reason: Short | None = None
    to_level: Annotated[int, Field(ge=1, le=100)] | None = None
    to: Short | None = None
    priority: Annotated[str, Field(pattern=r"^P[1-4]$", max_length=2)] | None = None


class AdvanceClock(Strict):
    to: Annotated[str, Field(max_length=64, description="ISO 8601 instant with an offset")]
