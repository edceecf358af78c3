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
import re
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
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # \ud800-\udfff, paired or not
_CONTAINERS = (dict, list)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text (bytes must be UTF-8) strictly; raises JSONInputError with a readable reason."""
    try:
        text = bytes(data).decode("utf-8") if isinstance(data, bytes | bytearray) else data
        text.encode("utf-8")  # a str handed in may carry raw surrogates (decoded with surrogateescape)
    except UnicodeError:
        raise JSONInputError("not UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise JSONInputError(f"nested deeper than {max_depth} levels") from None
    except JSONInputError:
        raise
    except ValueError as exc:
        raise JSONInputError(str(exc)) from None
    _check_depth(value, max_depth)
    if _SURROGATE_ESCAPE.search(text):  # rare: only then look at the parsed strings
        _check_unicode(value)
    return value


def _check_depth(value: Any, max_depth: int) -> None:
    """Level by level, without recursion; scalars are skipped in bulk (this runs on the event loop)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise JSONInputError(f"nested deeper than {max_depth} levels")
        deeper: list[Any] = []
        for item in level:
            deeper += [c for c in (item.values() if type(item) is dict else item) if type(c) in _CONTAINERS]
        level = deeper


def _check_unicode(value: Any) -> None:
    """Escaped surrogates must come in pairs (the parser joins a pair into one character; a lone one stays)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(exc.object[exc.start])
        raise JSONInputError(f"text has a lone surrogate (\\u{bad:04x}): not valid Unicode") from None
