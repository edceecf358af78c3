"""The Send API and sender actions (docs/channels.md §2.5, §2.6), with the error policy of checklist F17.

- 190 (token invalid) and 200–299 (permissions): a configuration problem. Logged as an error for the operator,
  never retried: retrying cannot fix a token.
- Outside the messaging window (10/2018278) or person unavailable (551): undeliverable, not retried.
- HTTP 5xx / 429, rate limits (4, 17, 32, 613), `is_transient`, connection refused: bounded retries with
  exponential backoff. A timeout after the request went out is not retried (it may have been delivered).
- Sender actions (mark_seen, typing_on/off) are separate requests, one attempt, failures ignored.
The page token travels as a query parameter and is never logged (only exception type names are).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.channels.messenger.config import MessengerSettings

log = logging.getLogger(__name__)

RATE_LIMITS = {4, 17, 32, 613}


class SendError(Exception):
    def __init__(self, kind: str, code: int | None, status: int, detail: str = "") -> None:
        super().__init__(f"Send API {kind} error (HTTP {status}, code {code}){': ' + detail if detail else ''}")
        self.kind = kind  # config | window | transient | uncertain | other
        self.code = code
        self.status = status


def classify(status: int, error: dict[str, Any]) -> str:
    code, subcode = error.get("code"), error.get("error_subcode")
    if code == 190 or (isinstance(code, int) and 200 <= code <= 299):
        return "config"
    if code == 551 or (code == 10 and subcode == 2018278):  # outside the window / person unavailable
        return "window"
    if status >= 500 or status == 429 or code in RATE_LIMITS or error.get("is_transient"):
        return "transient"
    return "other"


class GraphAPI:
    def __init__(self, settings: MessengerSettings, session: aiohttp.ClientSession,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.session = session
        self._sleep = sleep
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout_s, sock_connect=settings.http_timeout_s)

    def __repr__(self) -> str:
        return f"GraphAPI({self.settings.messages_url!r})"

    def _params(self) -> dict[str, str]:
        token = self.settings.page_access_token.get_secret_value()
        proof = hmac.new(self.settings.app_secret.get_secret_value().encode(), token.encode(), hashlib.sha256)
        return {"access_token": token, "appsecret_proof": proof.hexdigest()}

    async def send(self, recipient: dict[str, str], message: dict[str, Any], messaging_type: str = "RESPONSE",
                   tag: str | None = None) -> str | None:
        """Send one message; returns its mid. Raises SendError once the policy gives up."""
        body: dict[str, Any] = {"recipient": recipient, "messaging_type": messaging_type, "message": message}
        if tag:
            body["tag"] = tag
        for attempt in range(1, self.settings.send_attempts + 1):
            try:
                answer = await self._post(body)
                return answer.get("message_id")
            except SendError as exc:
                if exc.kind != "transient" or attempt == self.settings.send_attempts:
                    if exc.kind == "config":
                        log.error("Messenger Send API rejects our credentials (code %s): check "
                                  "MESSENGER_PAGE_ACCESS_TOKEN and the page's permissions", exc.code)
                    raise
                await self._sleep(self.settings.retry_base_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def sender_action(self, recipient: dict[str, str], action: str) -> bool:
        """mark_seen / typing_on / typing_off as its own request; best effort, never raises."""
        try:
            await self._post({"recipient": recipient, "sender_action": action})
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("Messenger sender action %s failed (%s); ignored", action, type(exc).__name__)
            return False

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self.session.post(self.settings.messages_url, params=self._params(), data=data,
                                         timeout=self._timeout,
                                         headers={"Content-Type": "application/json"}) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise SendError("transient", None, 0, f"cannot connect ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError("uncertain", None, 0, f"no answer ({type(exc).__name__})") from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if status == 200 and isinstance(answer, dict) and "error" not in answer:
            return answer
        error = answer.get("error") if isinstance(answer, dict) and isinstance(answer.get("error"), dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        raise SendError(classify(status, error), code, status, str(error.get("type") or ""))
