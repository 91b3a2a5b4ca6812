"""JSON text on the collector's save path: orjson where it can, the json module where it can't.

orjson is several times faster and writes what `json.dumps(..., ensure_ascii=False,
separators=(",", ":"))` writes for the values items hold (strings, ints, bools, None, lists,
dicts). What it refuses (a lone surrogate from hostile JSON, an int beyond 64 bits, NaN) goes to
the json module, which accepts it, so nothing a source sends is lost to the faster path; a lone
surrogate is written as its JSON escape, so the text can be stored as UTF-8 and reads back the
same. Hostile nesting deeper than either parser goes is a ValueError like any other bad JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_DEPTH = 500  # real payloads nest about 10 deep; json.dumps writes no deeper than ~990


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only lone surrogates fail: as \udXXX escapes, the same JSON
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def loads(text: str | bytes) -> Any:
    """The JSON value of `text`; ValueError when it is not JSON, or nests deeper than
    MAX_DEPTH (no payload does: such a value could not even be written out again)."""
    value = _loads(text)
    brackets = text.count("[" if isinstance(text, str) else b"[") + text.count(
        "{" if isinstance(text, str) else b"{")  # fmt: skip
    if brackets > MAX_DEPTH and _depth(value) > MAX_DEPTH:  # fewer brackets: not that deep
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)  # raises ValueError with json's message when it is not JSON
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo.extend((child, depth + 1) for child in
                            (node.values() if isinstance(node, dict) else node))  # fmt: skip
    return deepest
