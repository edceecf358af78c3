"""`GET/POST /webhooks/wechat`: authenticate, open the envelope, answer (docs/channels.md §1.2–§1.5, §5.1).

Order matters: the query signature and its freshness first (403), then the body size (400), then in safe
mode `msg_signature` over the ciphertext before any decryption (403), then the XML (400). Nothing is stored
or processed until all of that passed. After it, the push is WeChat's, so the answer is a reply or `success`
(plain, even in safe mode) — an error page would show the shopper "该公众号暂时无法提供服务" — with one
exception: `success` only acknowledges what is durably kept. When the store cannot keep the message (Redis
down, another delivery of it holds it without having kept it) the answer is 503, and WeChat sends the push
again (3 times within about 15 s); it never does after `success`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

from bot.agent import TurnFailed
from bot.channels.wechat import xml
from bot.channels.wechat.crypto import DecryptError, signature, signature_ok
from bot.http import HTTPError
from bot.stores.errors import store_unavailable

if TYPE_CHECKING:
    from bot.channels.wechat.channel import WeChatChannel

log = logging.getLogger(__name__)

PATH = "/webhooks/wechat"


def success() -> web.Response:
    return web.Response(text="success", content_type="text/plain")


def raw_query(request: web.Request) -> dict[str, str]:
    """The query with `unquote`, not `unquote_plus`: a base64 `+` must stay a `+` (§1.9 pitfall)."""
    pairs = (part.partition("=") for part in request.rel_url.raw_query_string.split("&") if part)
    return {unquote(key): unquote(value) for key, _, value in pairs}


def authenticate(channel: WeChatChannel, query: dict[str, str]) -> None:
    timestamp, nonce, given = query.get("timestamp"), query.get("nonce"), query.get("signature")
    if not (timestamp and nonce and given):
        raise HTTPError(403, "missing signature, timestamp or nonce")
    token = channel.settings.token.get_secret_value()
    if not signature_ok(signature(token, timestamp, nonce), given):
        raise HTTPError(403, "bad signature")
    if not timestamp.isdigit() or abs(channel.now() - int(timestamp)) > channel.settings.freshness_s:
        raise HTTPError(403, "timestamp outside the accepted window")


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise HTTPError(400, f"body larger than {max_bytes} bytes")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise HTTPError(400, f"body larger than {max_bytes} bytes")
    return body


def open_envelope(channel: WeChatChannel, query: dict[str, str], body: bytes) -> tuple[xml.Fields, bool]:
    """The push's fields and whether it came encrypted (then the reply is encrypted too)."""
    settings = channel.settings
    encrypted = query.get("encrypt_type", "").lower() == "aes"
    if settings.mode == "safe" and not encrypted:
        raise HTTPError(403, "safe mode: only encrypted pushes are accepted")
    try:
        if encrypted:
            if channel.cipher is None:
                log.error("WeChat sent an encrypted push but WECHAT_ENCODING_AES_KEY is not set")
                raise HTTPError(403, "encrypted push without a configured key")
            ciphertext = xml.parse(body, settings.max_body_bytes).get("Encrypt")
            expected = signature(settings.token.get_secret_value(), query["timestamp"], query["nonce"], ciphertext)
            if not ciphertext or not signature_ok(expected, query.get("msg_signature")):
                raise HTTPError(403, "bad msg_signature")
            try:
                body = channel.cipher.decrypt(ciphertext).encode("utf-8")
            except DecryptError:
                raise HTTPError(403, "cannot decrypt") from None
        fields = xml.parse(body, settings.max_body_bytes)
    except xml.XMLError as exc:
        raise HTTPError(400, str(exc)) from None
    if not fields.get("MsgType") or not fields.get("FromUserName") or not fields.get("ToUserName"):
        raise HTTPError(400, "MsgType, FromUserName and ToUserName are required")
    return fields, encrypted


def passive_reply(channel: WeChatChannel, fields: xml.Fields, text: str, encrypted: bool) -> web.Response:
    now = int(channel.now())
    body = xml.text_reply(fields.get("FromUserName"), fields.get("ToUserName"), now, text)
    if encrypted and channel.cipher is not None:
        ciphertext = channel.cipher.encrypt(body)
        timestamp, nonce = str(now), str(secrets.randbelow(9 * 10**9) + 10**9)
        msg_signature = signature(channel.settings.token.get_secret_value(), timestamp, nonce, ciphertext)
        body = xml.encrypted_reply(ciphertext, msg_signature, timestamp, nonce)
    return web.Response(text=body, content_type="text/xml")


async def verify(channel: WeChatChannel, request: web.Request) -> web.Response:
    """URL verification: the plain `echostr` back (also in safe mode, for an Official Account)."""
    query = raw_query(request)
    authenticate(channel, query)
    if "echostr" not in query:
        raise HTTPError(400, "missing echostr")
    return web.Response(text=query["echostr"], content_type="text/plain")


async def receive(channel: WeChatChannel, request: web.Request) -> web.Response:
    deadline = asyncio.get_running_loop().time() + channel.settings.reply_budget_s
    query = raw_query(request)
    authenticate(channel, query)
    body = await read_body(request, channel.settings.max_body_bytes)
    fields, encrypted = open_envelope(channel, query, body)
    try:
        text = await channel.answer(fields, deadline)
    except Exception as exc:
        if store_unavailable(exc) or isinstance(exc, TurnFailed):
            log.warning("WeChat push not kept (%r); answered 503 so that WeChat sends it again", exc)
            raise HTTPError(503, "message not stored; send it again") from None
        log.exception("WeChat push failed after authentication; answered success")
        return success()
    return passive_reply(channel, fields, text, encrypted) if text else success()


def routes(channel: WeChatChannel) -> list[web.AbstractRouteDef]:
    return [web.get(PATH, partial(verify, channel)), web.post(PATH, partial(receive, channel))]
