"""The access log without secrets: `?token=`, Messenger's `hub.verify_token` and any other query parameter whose
name says it is a secret are logged as `[redacted]`, in the request line and in logged headers (a Referer carries
the page's query too). `kefu run` serves with this class; the README promises that settings are never logged."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# name=value in a query string, where the name contains token, secret, password, passwd, key or hash
_SECRET_PARAM = re.compile(r"(?i)([?&;][^=&;\s\"#]*(?:token|secret|passw(?:or)?d|key|hash)[^=&;\s\"#]*=)[^&;\s\"#]*")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text with the value of every secret-looking query parameter replaced."""
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


class AccessLog(AccessLogger):
    """aiohttp's access logger (same format, same `extra` fields), with query-string secrets redacted."""

    def _format_line(self, request: BaseRequest, response: StreamResponse,
                     time: float) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [(key, redact(value) if isinstance(value, str) else value)
                for key, value in super()._format_line(request, response, time)]
