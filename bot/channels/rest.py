"""Rasa's REST channel (docs/channels.md §7): `POST /webhooks/rest/webhook {"sender", "message"}` → the bot's
messages, in the request. The conversation id is the sender as given, except an id of another channel's
conversations (`web:…`, `wechat:…`, `messenger:…`: 403), which only that channel may address. `X-Message-Id` (or
`metadata.message_id`) makes a retried request count once, and the retry gets that turn's stored answer.
`metadata.customer_id` counts only when signed (`identifier_hash`, bot/identity.py). Rate limits per client address
and per conversation (bot/ratelimit.py): over either, 429 with `Retry-After`, and nothing of the request is stored."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.agent import MAX_TEXT_CHARS, TurnFailed, UserMessage
from bot.app_keys import RATE_LIMITS
from bot.channels.base import Channel
from bot.dialogue import events as ev
from bot.http import RETRY_AFTER_S, HTTPError, json_dumps, read_json
from bot.notices import describe, needs_language
from bot.ratelimit import Rate, conversation_bucket
from bot.stores.errors import UNAVAILABLE

PATH = "/webhooks/rest/webhook"
MAX_ID_CHARS = 200  # a client's message id, kept with the message for de-duplication
Body = tuple[dict[str, Any], str | None]  # the request's JSON, and its X-Message-Id
Reply = list[dict[str, Any]]
REST: web.AppKey[RestChannel] = web.AppKey("rest_channel")


class RestSettings(BaseModel):
    """`channels.rest` in endpoints.yml, `REST_*` variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_sender_chars: int = Field(128, ge=1, le=1024)
    # Messages per minute after a burst, per client address and per conversation (sender); more: 429.
    client_per_minute: float = Field(60, gt=0)
    client_burst: int = Field(20, ge=1)
    conversation_per_minute: float = Field(30, gt=0)
    conversation_burst: int = Field(10, ge=1)

    @property
    def client_rate(self) -> Rate:
        return Rate(self.client_per_minute, self.client_burst)

    @property
    def conversation_rate(self) -> Rate:
        return Rate(self.conversation_per_minute, self.conversation_burst)


class RestChannel(Channel[RestSettings, Body, Reply]):
    name = "rest"
    key = REST
    conversation_prefix = None  # the caller names the conversation
    settings_model = RestSettings

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post(PATH, self.webhook), web.get("/webhooks/rest/", self.health)]

    async def webhook(self, request: web.Request) -> web.Response:
        assert self.agent
        limits, client = request.app[RATE_LIMITS], request.remote
        # the address first: a flood is turned away before its body is even read
        await limits.check(client, f"rest:client:{client}", self.settings.client_rate,
                           "too many messages from this address; wait and send again")
        message = await self.user_message((await read_json(request), request.headers.get("X-Message-Id")))
        await limits.check(client, conversation_bucket("rest", message.conversation_id),
                           self.settings.conversation_rate,
                           "too many messages in this conversation; wait and send again")
        try:
            events = await self.agent.handle(message, resend=True)  # a retry gets the answer it missed
        except TurnFailed as exc:
            raise HTTPError(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
        except UNAVAILABLE as exc:  # nothing was acknowledged: the client sends it again
            raise HTTPError(503, "the message could not be stored; send it again",
                            headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
        # the language only matters for a handoff notice without its own: most turns have none, and skip the read
        language = await self.agent.language(message.conversation_id) if needs_language(events) \
            else self.agent.default_language
        reply = self.render(events, language)
        return web.json_response([{"recipient_id": message.conversation_id, **m} for m in reply], dumps=json_dumps)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def user_message(self, incoming: Body) -> UserMessage:
        """The request as the bot's input; a request that is not a message gets HTTP 400 and nothing is stored."""
        body, message_id = incoming
        if not isinstance(body, dict):
            raise HTTPError(400, 'body must be a JSON object {"sender": …, "message": …}')
        sender, text = body.get("sender"), body.get("message")
        if sender is None or text is None:
            missing = [k for k in ("sender", "message") if body.get(k) is None]
            raise HTTPError(400, f"missing {' and '.join(missing)}")
        limit = self.settings.max_sender_chars
        if not isinstance(sender, str) or not sender.strip() or len(sender) > limit:
            raise HTTPError(400, f"sender must be a non-empty string of at most {limit} characters")
        if not isinstance(text, str):
            raise HTTPError(400, "message must be a string")
        if not text.strip():
            raise HTTPError(400, "message is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise HTTPError(400, f"message is longer than {MAX_TEXT_CHARS} characters")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise HTTPError(400, "metadata must be an object")
        message_id = message_id or metadata.get("message_id")
        if message_id is not None and (not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID_CHARS):
            raise HTTPError(400, f"a message id (X-Message-Id or metadata.message_id) must be a string of 1 to "
                                 f"{MAX_ID_CHARS} characters")
        sender = sender.strip()
        # Imported here: the registry lists every channel, this one included.
        from bot.channels.registry import owner_of

        if owner := owner_of(sender):
            raise HTTPError(403, f"sender {sender!r} names a {owner} conversation: the REST channel may only "
                                 "address its own conversations")
        return UserMessage(sender, text, self.name, sender, message_id, metadata)

    def render(self, events: list[ev.Event], language: str) -> Reply:
        """Rasa REST output for the bot and agent messages among `events`, and the shopper-facing text of
        handoff notices (place in line, agent joined, closed / leave a message, ticket made)."""
        out: Reply = []
        for event in events:
            if described := describe(event, language):
                out.append({"text": described, "handoff": event["event"]})
            elif event.get("event") == "bot":
                data = event.get("data") or {}
                extras = ("buttons", "image", "attachment", "custom", "quick_replies", "elements")
                out.append({**({"text": event["text"]} if event.get("text") else {}),
                            **{key: data[key] for key in extras if data.get(key)}})
            elif event.get("event") == ev.AGENT_MESSAGE:
                out.append({"text": event.get("text"), "agent": event.get("agent")})
        return out
