"""JSON text on the collector's save path: orjson where it can, the json module where it can't.

orjson is several times faster and writes what `json.dumps(..., ensure_ascii=False,
separators=(",", ":"))` writes for the values items hold (strings, ints, bools, None, lists,
dicts). What it refuses (a lone surrogate from hostile JSON, an int beyond 64 bits, NaN) goes to
the json module, which accepts it, so nothing a source sends is lost to the faster path.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # raises ValueError with json's message when it is not JSON
