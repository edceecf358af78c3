"""Rasa's REST channel: `POST /webhooks/rest/webhook {"sender", "message"}` → the bot's messages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.app_keys import AGENT
from bot.dialogue import events as ev
from bot.http import HTTPError, read_json
from bot.notices import describe

routes = web.RouteTableDef()
MAX_SENDER_CHARS = 128


def validate_message(body: object) -> tuple[str, str, dict]:
    if not isinstance(body, dict):
        raise HTTPError(400, 'body must be a JSON object {"sender": …, "message": …}')
    sender, text = body.get("sender"), body.get("message")
    if sender is None or text is None:
        missing = [k for k in ("sender", "message") if body.get(k) is None]
        raise HTTPError(400, f"missing {' and '.join(missing)}")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        raise HTTPError(400, f"sender must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
    if not isinstance(text, str):
        raise HTTPError(400, "message must be a string")
    if not text.strip():
        raise HTTPError(400, "message is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise HTTPError(400, f"message is longer than {MAX_TEXT_CHARS} characters")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise HTTPError(400, "metadata must be an object")
    return sender.strip(), text, metadata


@routes.post("/webhooks/rest/webhook")
async def webhook(request: web.Request) -> web.Response:
    sender, text, metadata = validate_message(await read_json(request))
    agent = request.app[AGENT]
    message_id = request.headers.get("X-Message-Id") or metadata.get("message_id")
    events = await agent.handle(UserMessage(sender, text, "rest", sender, message_id, metadata))
    language = await agent.language(sender)
    return web.json_response(rest_messages(events, sender, language), dumps=_dumps)


def rest_messages(events: list[ev.Event], recipient_id: str, language: str) -> list[dict[str, Any]]:
    """Rasa REST channel output for the bot and agent messages among `events`, and the shopper-facing text of
    handoff notices (place in line, agent joined, closed / leave a message, ticket made)."""
    out = []
    for event in events:
        if described := describe(event, language):
            out.append({"recipient_id": recipient_id, "text": described, "handoff": event["event"]})
        elif event.get("event") == "bot":
            message: dict[str, Any] = {"recipient_id": recipient_id}
            if event.get("text"):
                message["text"] = event["text"]
            data = event.get("data") or {}
            for key in ("buttons", "image", "attachment", "custom", "quick_replies", "elements"):
                if data.get(key):
                    message[key] = data[key]
            out.append(message)
        elif event.get("event") == ev.AGENT_MESSAGE:
            out.append({"recipient_id": recipient_id, "text": event.get("text"), "agent": event.get("agent")})
    return out


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@routes.get("/webhooks/rest/")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
