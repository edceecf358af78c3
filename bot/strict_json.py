"""The one JSON reader for what arrives from outside: HTTP bodies, widget frames, webhooks, button payloads.

Python's `json.loads` accepts things that break us later, so here they are refused up front with a
`JSONInputError` that says what is wrong (the HTTP layer turns it into 400 `{"error": …}`, the widget into an
`error` frame):
- nesting deeper than `MAX_DEPTH` (deep enough JSON raises RecursionError inside the parser, and anything
  merely very deep would do so later when we store or render it);
- `NaN`, `Infinity` and numbers too big for a float (they are not JSON: stored, they break every browser's
  `JSON.parse` of that conversation, e.g. the console);
- lone UTF-16 surrogates such as `"\\ud800"` (not Unicode: no store can encode them as UTF-8).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


class JSONInputError(ValueError):
    """Input that is not JSON we accept; the message is meant for the sender."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"number {text[:40]} is too large (JSON numbers must be finite)")
    return value


def _constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not JSON (numbers must be finite)")


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_constant)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text (bytes must be UTF-8) strictly; raises JSONInputError with a readable reason."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("not UTF-8") from None
    try:
        value = _DECODER.decode(data)
    except RecursionError:
        raise JSONInputError(f"nested deeper than {max_depth} levels") from None
    except JSONInputError:
        raise
    except ValueError as exc:
        raise JSONInputError(str(exc)) from None
    check(value, max_depth)
    return value


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Depth and Unicode of an already parsed value, without recursion (so any depth is safe to look at)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _unicode(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise JSONInputError(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _unicode(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONInputError(f"text has a lone surrogate (\\u{ord(text[exc.start]):04x}): not valid Unicode") from None
