"""`GET/POST /webhooks/messenger`: verification and signed event batches (docs/channels.md §2.1–§2.4, §5.2).

POST: the raw body is read (capped) and its `X-Hub-Signature-256` checked before any parsing (403 and nothing
processed otherwise); then JSON (400) and `object == "page"` (404); then every event is queued and the answer
is 200 at once — the bot turns run after it, so Meta never times out and retries.
"""

from __future__ import annotations

import hmac
import logging
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from bot import strict_json
from bot.channels.messenger import signature
from bot.channels.messenger.inbound import parse_batch
from bot.http import HTTPError

if TYPE_CHECKING:
    from bot.channels.messenger.channel import MessengerChannel

log = logging.getLogger(__name__)

PATH = "/webhooks/messenger"


async def verify(channel: MessengerChannel, request: web.Request) -> web.Response:
    settings = channel.settings
    mode, token = request.query.get("hub.mode"), request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge")
    expected = settings.verify_token.get_secret_value()
    if mode != "subscribe" or challenge is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPError(403, "verification failed")
    return web.Response(text=challenge, content_type="text/plain")


async def receive(channel: MessengerChannel, request: web.Request) -> web.Response:
    limit = channel.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise HTTPError(413, f"body larger than {limit} bytes")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise HTTPError(413, f"body larger than {limit} bytes")
    header = request.headers.get(signature.HEADER)
    if not signature.verify(channel.settings.app_secret.get_secret_value(), body, header):
        raise HTTPError(403, "missing or wrong X-Hub-Signature-256")
    try:
        payload = strict_json.loads(body)
    except strict_json.JSONInputError as exc:
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise HTTPError(404, "only page subscriptions are handled here")
    await channel.accept(parse_batch(payload))
    return web.Response(text="EVENT_RECEIVED", content_type="text/plain")


def routes(channel: MessengerChannel) -> list[web.AbstractRouteDef]:
    return [web.get(PATH, partial(verify, channel)), web.post(PATH, partial(receive, channel))]
