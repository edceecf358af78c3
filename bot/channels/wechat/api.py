"""WeChat's server API: access token, customer-service messages, typing (docs/channels.md §1.6, §1.7).

Error policy (checklist W14–W19):
- 40001/40014/42001 (token bad or expired): invalidate, refresh once (one refresher at a time), retry once.
- 45047 (quota used) / 45015 (window closed, or unfollowed): raised at once, never retried blindly; the caller
  keeps the message pending until the shopper writes again.
- -1 (busy), HTTP 5xx, connection refused: bounded retries with exponential backoff. These say the message was
  not taken. A timeout after the request went out is ambiguous, so it is *not* retried (`DeliveryUncertain`):
  better one lost message than the same message twice.
The token and the app secret never appear in logs or exceptions: URLs carrying them are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.channels.wechat.config import WeChatSettings

log = logging.getLogger(__name__)

INVALID_TOKEN = {40001, 40014, 42001}
QUOTA_USED = 45047
WINDOW_CLOSED = 45015
TYPING_IGNORED = {45080, 45081}
_HINTS = {40164: "this server's IP is not on the account's IP whitelist",
          40013: "WECHAT_APPID is wrong", 40125: "WECHAT_APPSECRET is wrong",
          48001: "the account lacks this API permission (a verified 服务号 is needed)"}


class WeChatAPIError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"WeChat API error {code}: {message[:200]}")
        self.code = code


class DeliveryUncertain(Exception):
    """The request went out but no answer came: it may have been delivered, so it is not repeated."""


class _Transient(Exception):
    def __init__(self, code: int, what: str) -> None:
        super().__init__(what)
        self.code = code


class TokenCache:
    """One access token per app in this worker, refreshed `margin_s` before expiry by one caller at a time
    (single-flight: concurrent callers wait for that refresh instead of starting their own)."""

    def __init__(self, fetch: Callable[[bool], Awaitable[tuple[str, float]]], margin_s: float,
                 clock: Callable[[], float], force_interval_s: float = 30.0) -> None:
        self._fetch = fetch
        self._margin_s = margin_s
        self._clock = clock
        self._force_interval_s = force_interval_s
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._rejected: str | None = None
        self._last_force = float("-inf")
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenCache(cached={self._token is not None})"

    def _fresh(self) -> str | None:
        return self._token if self._token and self._clock() < self._refresh_at else None

    async def get(self) -> str:
        token = self._fresh()
        if token:
            return token
        async with self._lock:
            token = self._fresh()
            if token:
                return token
            token, expires_in = await self._fetch(False)
            if token == self._rejected and self._clock() - self._last_force >= self._force_interval_s:
                # the stable endpoint hands out the same token while it thinks it valid: force a new one
                # (limited by WeChat to 20 a day, 30 s apart)
                self._last_force = self._clock()
                token, expires_in = await self._fetch(True)
            self.refreshes += 1
            self._token, self._rejected = token, None
            self._refresh_at = self._clock() + expires_in - min(self._margin_s, expires_in / 2)
            return token

    def invalidate(self, token: str) -> None:
        """A call said `token` is no longer valid; only the first of many such reports drops it."""
        if token == self._token:
            self._token, self._rejected = None, token


class WeChatAPI:
    def __init__(self, settings: WeChatSettings, session: aiohttp.ClientSession, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.session = session
        self._sleep = sleep
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout_s, sock_connect=settings.http_timeout_s)
        self.tokens = TokenCache(self._fetch_token, settings.token_margin_s, clock)

    def __repr__(self) -> str:
        return f"WeChatAPI({self.settings.api_root!r})"

    async def _fetch_token(self, force: bool) -> tuple[str, float]:
        root, s = self.settings.api_root, self.settings
        secret = s.appsecret.get_secret_value()
        if s.token_endpoint == "stable":
            body = {"grant_type": "client_credential", "appid": s.appid, "secret": secret, "force_refresh": force}
            request = self.session.post(f"{root}/cgi-bin/stable_token", json=body, timeout=self._timeout)
        else:
            params = {"grant_type": "client_credential", "appid": s.appid, "secret": secret}
            request = self.session.get(f"{root}/cgi-bin/token", params=params, timeout=self._timeout)
        try:
            async with request as resp:
                data = await _json(resp)
        except (aiohttp.ClientError, TimeoutError, _Transient) as exc:
            raise WeChatAPIError(-1, f"access token request failed ({type(exc).__name__})") from None
        code = int(data.get("errcode") or 0)
        if code or not data.get("access_token"):
            hint = _HINTS.get(code, "")
            log.error("WeChat refused an access token: errcode %s %s", code, hint)
            raise WeChatAPIError(code or -1, hint or str(data.get("errmsg") or "no access_token"))
        return str(data["access_token"]), float(data.get("expires_in") or 7200)

    async def call(self, path: str, payload: dict[str, Any], attempts: int | None = None) -> dict[str, Any]:
        """POST JSON to `path` with the access token, under the error policy above."""
        attempts = attempts or self.settings.send_attempts
        refreshed, failures = False, 0
        while True:
            token = await self.tokens.get()
            try:
                data = await self._post(path, token, payload)
                code = int(data.get("errcode") or 0)
                if code == -1:
                    raise _Transient(-1, "system busy")
            except _Transient as exc:
                failures += 1
                if failures >= attempts:
                    raise WeChatAPIError(exc.code, f"gave up after {failures} attempts: {exc}") from None
                await self._sleep(self.settings.retry_base_s * 2 ** (failures - 1))
                continue
            if code in INVALID_TOKEN and not refreshed:
                log.info("WeChat access token rejected (%s): refreshing once", code)
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if code:
                raise WeChatAPIError(code, str(data.get("errmsg") or _HINTS.get(code, "")))
            return data

    async def _post(self, path: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")  # raw UTF-8: no \\uXXXX shown to users
        url = f"{self.settings.api_root}{path}"
        try:
            async with self.session.post(url, params={"access_token": token}, data=body, timeout=self._timeout,
                                         headers={"Content-Type": "application/json; charset=utf-8"}) as resp:
                if resp.status >= 500:
                    raise _Transient(resp.status, f"HTTP {resp.status}")
                if resp.status != 200:
                    raise WeChatAPIError(resp.status, f"HTTP {resp.status}")
                return await _json(resp)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _Transient(-1, f"cannot connect ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryUncertain(f"{path}: no answer ({type(exc).__name__})") from None

    async def send_text(self, openid: str, text: str, kf_account: str | None = None) -> None:
        payload: dict[str, Any] = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        if kf_account:
            payload["customservice"] = {"kf_account": kf_account}
        await self.call("/cgi-bin/message/custom/send", payload)

    async def typing(self, openid: str, on: bool = True) -> None:
        """Best effort: never raises (45080/45081 just mean WeChat won't show it now)."""
        try:
            await self.call("/cgi-bin/message/custom/typing",
                            {"touser": openid, "command": "Typing" if on else "CancelTyping"}, attempts=1)
        except WeChatAPIError as exc:
            if exc.code not in TYPING_IGNORED:
                log.info("WeChat typing indicator failed: %s", exc)
        except Exception as exc:
            log.info("WeChat typing indicator failed (%s)", type(exc).__name__)


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = json.loads(await resp.read())
    except ValueError:
        raise _Transient(resp.status, "answer is not JSON") from None
    if not isinstance(data, dict):
        raise _Transient(resp.status, "answer is not a JSON object")
    return data
