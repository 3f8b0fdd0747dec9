"""JSON for the write path and the API's hottest answers.

Every case, timeline entry and answer is encoded on the one interpreter that serves requests;
orjson does it about ten times faster, with the same compact UTF-8 output as
`json.dumps(..., ensure_ascii=False, separators=(",", ":"))`. What orjson refuses (integers
beyond 64 bits, lone surrogates in a case's free-form fields) goes through the standard
library, exactly. Reading stays with the standard library: orjson would turn such integers
into floats, and could not read NaN from rows stored before numbers had to be finite.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["dumps", "dumps_text", "loads", "finite"]

loads = json.loads


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (UTF-8, or ASCII with escapes where orjson refused the value)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a value orjson does not take
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def dumps_text(value: Any) -> str:
    """`dumps` as text, for TEXT columns."""
    return dumps(value).decode("utf-8")


def finite(value: Any) -> Any:
    """`value` when it holds no NaN or infinity anywhere (JSON has no such numbers, and
    encoders disagree on them) and no lone surrogate in any string or key (`"\\ud800"` is
    valid JSON but no Unicode text: no answer could be written with it); a pydantic
    after-validator for free-form JSON fields."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("NaN and Infinity are not JSON numbers")
        if isinstance(v, str):
            _text(v)
        elif isinstance(v, dict):
            for k in v:
                if isinstance(k, str):
                    _text(k)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return value


def _text(s: str) -> None:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None
