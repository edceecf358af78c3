"""The whole HTTP API as one OpenAPI 3.1 document, served at `GET /openapi.json`.

Why here and as code: one place lists every route with what it takes and every status it can answer, so a client
author (or a fuzzer: `make fuzz`, tests/test_api_fuzz.py) knows the contract. tests/test_openapi.py compares its
paths and methods with the app's real routes both ways, so a new route without a description fails the suite.
The schemas are deliberately open (`additionalProperties` allowed) where an answer may grow; what they name is
promised. Every error answer is JSON `{"error": "…"}`; every route also answers 400 to a header that is not UTF-8.
"""

from __future__ import annotations

from functools import cache
from typing import Any

Schema = dict[str, Any]

VERSION = "0.3.0"

# -- small builders -------------------------------------------------------------------------------------------

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
NULLABLE_NUM: Schema = {"type": ["number", "null"]}


def obj(required: dict[str, Schema] | None = None, optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these properties (others may appear too)."""
    required = required or {}
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = sorted(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def content(media: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or STR}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def empty(description: str) -> dict[str, Any]:
    return {"description": description}


def query(name: str, schema: Schema, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
            "description": description}


def header(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


def operation(tag: str, summary: str, responses: dict[int, dict[str, Any]], *, parameters: list | None = None,
              body: dict[str, Any] | None = None, security: list | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"tags": [tag], "summary": summary,
                          "responses": {str(status): answer for status, answer in sorted(responses.items())}}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    return op


def request_json(schema: Schema, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


# -- what many routes answer ----------------------------------------------------------------------------------

BAD_JSON = error("body is not JSON we accept (nested too deep, NaN, lone surrogate…) or is missing a field")
TOO_LARGE = error("body larger than the limit")
NO_TOKEN = error("missing or wrong API token (`kefu run --auth-token`)")
NOT_LOOPBACK = error("no API token configured and the caller is not on this machine")
NO_AGENT = error("not logged in to the agent console")
OTHER_SITE = error("a cookie-authenticated change from another site")
NOT_FOUND = error("no such conversation, ticket or agent")
CONFLICT = error("the conversation is not in a state that allows this (already claimed, closed…)")
LOCKED_OUT = error("too many wrong passwords from this client: wait")
BUSY = error("the store is busy or down; try again")
WIDGET_SESSION = error("unknown or expired widget session: POST /api/widget/session for a new one")
WIDGET_ORIGIN = error("a page on a site that is not in channels.widget.allowed_origins")
RATE_LIMITED = {**error("over a rate limit (bot/ratelimit.py): nothing was stored; send it again after "
                         "Retry-After seconds"),
                "headers": {"Retry-After": {"description": "whole seconds to wait", "schema": INT}}}
HTML = content("text/html", "an HTML page")

API_TOKEN = [{"apiToken": []}, {"apiTokenQuery": []}]
API_TOKEN_OR_LOOPBACK = [{"apiToken": []}, {"apiTokenQuery": []}, {}]
AGENT = [{"agentSession": []}, {"agentCookie": []}]
WIDGET = [{"widgetSession": []}]
PUBLIC: list = [{}]

# the answers of every /api/agent route (refusals mapped in handoff/console/web.py)
AGENT_REFUSALS = {400: error("a refused action (bad field, unknown status…)"), 401: NO_AGENT, 403: OTHER_SITE,
                  404: NOT_FOUND, 409: CONFLICT, 503: BUSY}


def agent_op(summary: str, ok: dict[int, dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return operation("agent", summary, {**AGENT_REFUSALS, 413: TOO_LARGE, **ok}, security=AGENT, **kwargs)


CID = path_param("cid", "conversation id")
EVENTS = array(ref("Event"))

SCHEMAS: dict[str, Schema] = {
    "Error": {**obj({"error": STR}, {"retry_after_s": NUM}),
              "description": "every error answer (`retry_after_s`: over a rate limit, the seconds to wait)"},
    "Event": {**obj({"event": STR}, {"seq": INT, "timestamp": NUM, "text": NULLABLE_STR}),
              "description": "one event of a conversation (docs/design.md: one conversation = one list of events)"},
    "Health": obj({"status": {"enum": ["ok", "down"]}, "store": STR},
                  {"model": NULLABLE_STR, "fingerprint": NULLABLE_STR, "down": {"type": "object",
                                                                                 "additionalProperties": STR}}),
    "RestMessage": obj({"recipient_id": STR}, {"text": NULLABLE_STR, "buttons": array(ANY_OBJECT),
                                              "handoff": STR, "agent": NULLABLE_STR}),
    "Parse": obj({"text": STR, "intent": ANY_OBJECT, "entities": array(ANY_OBJECT)},
                 {"intent_ranking": array(ANY_OBJECT), "language": STR, "faq": array(ANY_OBJECT)}),
    "Tracker": obj({"sender_id": STR, "events": array(ANY_OBJECT)}, {"slots": ANY_OBJECT,
                                                                    "latest_message": ANY_OBJECT}),
    "AgentPublic": obj({"username": STR}, {"name": STR}),
    "Ticket": obj({"id": STR, "status": STR, "conversation_id": STR}),
    "FAQEntry": {**obj({"id": STR, "category": STR, "questions": obj({"zh": array(STR), "en": array(STR)}),
                        "answer": obj({"zh": STR, "en": STR})},
                       {"title": obj(optional={"zh": STR, "en": STR}), "tags": array(STR), "disabled": BOOL}),
                 "description": "an entry in data/faq.yml's item format; both languages are required"},
    "KnowledgeChange": obj({"version": obj({"number": INT, "author": STR, "at": NUM, "summary": STR,
                                            "based_on": INT, "changed": array(STR)}),
                            "warnings": array(STR)}),
    "WidgetSession": obj({"token": STR, "conversation_id": STR, "new": BOOL, "last_seq": INT,
                          "state": ANY_OBJECT, "limits": ANY_OBJECT}),
    "WidgetHistory": obj({"conversation_id": STR, "last_seq": INT, "state": ANY_OBJECT,
                          "frames": array(ANY_OBJECT), "has_more": BOOL}),
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "apiToken": {"type": "http", "scheme": "bearer", "description": "`kefu run --auth-token` (Rasa's)"},
    "apiTokenQuery": {"type": "apiKey", "in": "query", "name": "token", "description": "the same, as ?token="},
    "agentSession": {"type": "http", "scheme": "bearer", "description": "token from POST /api/agent/login"},
    "agentCookie": {"type": "apiKey", "in": "cookie", "name": "kefu_console", "description": "the console's"},
    "widgetSession": {"type": "http", "scheme": "bearer", "description": "token from POST /api/widget/session"},
}


def _core() -> dict[str, dict[str, Any]]:
    return {
        "/health": {"get": operation("core", "readiness: 503 naming the store that does not answer", {
            200: json_body(ref("Health"), "this worker can serve"),
            503: json_body(ref("Health"), "a store does not answer")}, security=PUBLIC)},
        "/metrics": {"get": operation("core", "Prometheus metrics (API token or KEFU_METRICS_TOKEN)", {
            200: content("text/plain", "Prometheus text format"), 401: NO_TOKEN, 403: NOT_LOOPBACK},
            security=API_TOKEN_OR_LOOPBACK)},
        "/openapi.json": {"get": operation("core", "this document", {
            200: json_body(ANY_OBJECT, "OpenAPI 3.1")}, security=PUBLIC)},
        "/model/parse": {"post": operation("core", "Rasa's parse result plus language and FAQ top-k", {
            200: json_body(ref("Parse"), "intent ranking, entities, language, FAQ candidates"),
            400: BAD_JSON, 401: NO_TOKEN, 413: TOO_LARGE},
            body=request_json(obj({"text": {"type": "string", "maxLength": 5000}})), security=API_TOKEN)},
        "/conversations/{conversation_id}/tracker": {"get": operation("core", "a conversation as Rasa's tracker", {
            200: json_body(ref("Tracker"), "the tracker"), 401: NO_TOKEN, 403: NOT_LOOPBACK,
            404: error("unknown conversation")},
            parameters=[path_param("conversation_id", "conversation id")], security=API_TOKEN_OR_LOOPBACK)},
    }


def _rest() -> dict[str, dict[str, Any]]:
    message = obj({"sender": {"type": "string", "minLength": 1, "maxLength": 128},
                   "message": {"type": "string", "minLength": 1, "maxLength": 5000}},
                  {"metadata": obj(optional={"message_id": STR, "customer_id": STR, "identifier_hash": STR})})
    return {
        "/webhooks/rest/webhook": {"post": operation("channels", "Rasa's REST channel: the bot's replies", {
            200: json_body(array(ref("RestMessage")), "the bot's (or agent's) messages for this turn"),
            400: BAD_JSON, 403: error("sender names another channel's conversation (web:, wechat:, messenger:)"),
            413: TOO_LARGE, 429: RATE_LIMITED, 503: error("the turn could not be stored; send it again")},
            parameters=[header("X-Message-Id", STR, "makes a retried request count once")],
            body=request_json(message), security=PUBLIC)},
        "/webhooks/rest/": {"get": operation("channels", "the REST channel is up", {
            200: json_body(obj({"status": STR}), "ok")}, security=PUBLIC)},
    }


def _push_webhooks() -> dict[str, dict[str, Any]]:
    wechat_query = [query(name, STR, f"WeChat's {name}") for name in
                    ("signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature")]
    return {
        "/webhooks/wechat": {
            "get": operation("channels", "WeChat URL verification: echostr back", {
                200: content("text/plain", "the echostr"), 400: error("missing echostr"),
                403: error("bad or stale signature")},
                parameters=[*wechat_query[:3], query("echostr", STR, "echoed back")], security=PUBLIC),
            "post": operation("channels", "a WeChat push (plain or AES safe mode)", {
                200: {"description": "a passive reply or `success`",
                      "content": {"text/xml": {"schema": STR}, "text/plain": {"schema": STR}}},
                400: error("not WeChat XML, or body too large"), 403: error("bad signature, stale, or not decryptable"),
                503: error("the message could not be stored: WeChat sends it again")},
                parameters=wechat_query, body={"required": False, "content": {"text/xml": {"schema": STR}}},
                security=PUBLIC)},
        "/webhooks/messenger": {
            "get": operation("channels", "Messenger webhook verification: hub.challenge back", {
                200: content("text/plain", "the challenge"), 403: error("wrong verify token or mode")},
                parameters=[query("hub.mode", STR, "subscribe"), query("hub.verify_token", STR, "the verify token"),
                            query("hub.challenge", STR, "echoed back")], security=PUBLIC),
            "post": operation("channels", "a signed Messenger event batch", {
                200: content("text/plain", "EVENT_RECEIVED"), 400: BAD_JSON,
                403: error("missing or wrong X-Hub-Signature-256"), 404: error("not a page subscription"),
                413: TOO_LARGE},
                parameters=[header("X-Hub-Signature-256", STR, "sha256=HMAC of the body with the app secret")],
                body=request_json(ANY_OBJECT), security=PUBLIC)},
    }


def _widget() -> dict[str, dict[str, Any]]:
    cors = {204: empty("CORS preflight allowed"), 403: WIDGET_ORIGIN}
    origin = [header("Origin", STR, "the page's origin (checked against allowed_origins)")]
    return {
        "/widget.js": {"get": operation("widget", "the chat bubble's script", {
            200: content("application/javascript", "JavaScript")}, security=PUBLIC)},
        "/widget.css": {"get": operation("widget", "the chat bubble's style", {
            200: content("text/css", "CSS")}, security=PUBLIC)},
        "/api/widget/session": {
            "post": operation("widget", "open or resume a shopper's session", {
                200: json_body(ref("WidgetSession"), "the session (new when the token was unknown)"),
                400: BAD_JSON, 403: WIDGET_ORIGIN, 413: TOO_LARGE, 429: RATE_LIMITED},
                body=request_json(obj(optional={"token": STR}), required=False), security=PUBLIC),
            "options": operation("widget", "CORS preflight", cors, parameters=origin, security=PUBLIC)},
        "/api/widget/history": {
            "get": operation("widget", "the conversation's frames after a seq", {
                200: json_body(ref("WidgetHistory"), "frames, newest last"),
                400: error("after_seq and limit must be integers"), 401: WIDGET_SESSION, 403: WIDGET_ORIGIN},
                parameters=[query("after_seq", INT, "frames after this seq"), query("limit", INT, "at most")],
                security=WIDGET),
            "options": operation("widget", "CORS preflight", cors, parameters=origin, security=PUBLIC)},
        "/api/widget/upload": {
            "post": operation("widget", "upload a file to attach to the next message", {
                201: json_body(obj({"attachment_id": STR}, {"name": STR, "mime": STR, "size": INT}), "stored"),
                400: error("not multipart with one part named file, empty, or a bad file name"),
                401: WIDGET_SESSION, 403: WIDGET_ORIGIN, 413: TOO_LARGE,
                415: error("a type that is not allowed, or content that is not what its type says"),
                429: {**RATE_LIMITED, "description": "too many files kept (quota), or uploading too fast "
                                                     "(rate limit: with Retry-After)"}},
                body={"required": True, "content": {"multipart/form-data": {"schema": obj(
                    {"file": {"type": "string", "format": "binary"}})}}}, security=WIDGET),
            "options": operation("widget", "CORS preflight", cors, parameters=origin, security=PUBLIC)},
        "/api/widget/files/{attachment_id}": {"get": operation("widget", "download an uploaded file", {
            200: {"description": "the file, as an attachment", "content": {"*/*": {"schema": {"type": "string"}}}},
            404: error("no such file")}, parameters=[path_param("attachment_id", "from the upload")],
            security=PUBLIC)},
        "/api/widget/ws": {"get": operation("widget", "the chat socket (WebSocket upgrade; frames: docs/widget.md)", {
            101: empty("switching to WebSocket"), 400: empty("not a WebSocket upgrade"),
            403: WIDGET_ORIGIN}, parameters=origin, security=PUBLIC)},
        "/api/widget/suggest": {"get": operation("widget", "FAQ suggestions while the shopper types", {
            200: json_body(obj({"language": STR, "suggestions": array(obj({"id": STR, "title": STR,
                                                                            "payload": STR}))}), "suggestions"),
            400: error("limit must be an integer"), 403: WIDGET_ORIGIN, 429: RATE_LIMITED},
            parameters=[query("q", STR, "what the shopper typed"), query("lang", {"enum": ["zh", "en"]}, "UI"),
                        query("limit", INT, "at most 5")], security=PUBLIC)},
    }


def _pages() -> dict[str, dict[str, Any]]:
    lang = query("lang", {"enum": ["zh", "en"]}, "page language")
    return {
        "/": {"get": operation("pages", "the demo shop with the chat bubble", {200: HTML}, security=PUBLIC)},
        "/demo/{filename}": {"get": operation("pages", "the demo shop's files", {
            200: {"description": "a file", "content": {"*/*": {"schema": STR}}},
            403: empty("outside the folder"), 404: empty("no such file")},
            parameters=[path_param("filename", "file name")], security=PUBLIC)},
        "/help": {"get": operation("pages", "the help centre", {200: HTML, 429: RATE_LIMITED},
                                   parameters=[lang, query("q", STR, "search"), query("category", STR, "topic")],
                                   security=PUBLIC)},
        "/help/{entry_id}": {"get": operation("pages", "one help article", {
            200: HTML, 302: empty("unknown article: back to /help")},
            parameters=[path_param("entry_id", "FAQ entry id"), lang], security=PUBLIC)},
        "/api/help/search": {"get": operation("pages", "search the FAQ as the bot does", {
            200: json_body(obj({"query": STR, "language": STR, "results": array(obj(
                {"id": STR, "title": STR, "answer": STR, "url": STR}))}), "results"),
            400: error("q is required"), 429: RATE_LIMITED},
            parameters=[query("q", {"type": "string", "minLength": 1}, "the question", required=True), lang],
            security=PUBLIC)},
    }


def _console() -> dict[str, dict[str, Any]]:
    login_form = obj({"username": STR, "password": STR})
    return {
        "/console/login": {
            "get": operation("console", "the login page", {200: HTML}, parameters=[
                query("lang", {"enum": ["zh", "en"]}, "page language")], security=PUBLIC),
            "post": operation("console", "the login form (no JavaScript needed)", {
                303: empty("logged in: cookie set, to /console"), 400: error("the form could not be read"),
                401: HTML, 403: OTHER_SITE, 415: error("not application/x-www-form-urlencoded"),
                429: LOCKED_OUT, 503: BUSY},
                body={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": login_form}}},
                security=PUBLIC)},
        "/console": {"get": operation("console", "the agent console page", {
            200: HTML, 302: empty("not logged in: to /console/login")}, security=AGENT)},
        "/console/{asset}": {"get": operation("console", "the console's script and style", {
            200: {"description": "app.js or console.css", "content": {"application/javascript": {"schema": STR},
                                                                      "text/css": {"schema": STR}}},
            401: NO_AGENT, 403: OTHER_SITE, 404: error("no such asset")},
            parameters=[path_param("asset", "app.js or console.css")], security=AGENT)},
    }


def _agent_api() -> dict[str, dict[str, Any]]:
    text_body = request_json(obj({"text": {"type": "string", "minLength": 1}}))
    changed = obj({"conversation_id": STR, "events": EVENTS}, {"state": STR})
    return {
        "/api/agent/login": {"post": operation("agent", "log in: a session token (also set as a cookie)", {
            200: json_body(obj({"token": STR, "agent": ref("AgentPublic")}), "logged in"),
            400: BAD_JSON, 401: error("wrong username or password"), 413: TOO_LARGE, 429: LOCKED_OUT, 503: BUSY},
            body=request_json(obj({"username": STR, "password": STR})), security=PUBLIC)},
        "/api/agent/logout": {"post": agent_op("end this session", {200: json_body(obj({"ok": BOOL}), "ended")})},
        "/api/agent/me": {"get": agent_op("who am I, the team's groups, hours", {
            200: json_body(obj({"agent": ref("AgentPublic"), "status": STR}), "the agent")})},
        "/api/agent/status": {"put": agent_op("set online / away / offline", {
            200: json_body(obj({"status": {}}), "the status asked for")},
            body=request_json(obj({"status": {"enum": ["online", "away", "offline"]}})))},
        "/api/agent/agents": {"get": agent_op("colleagues (for transfers)", {
            200: json_body(array(obj({"username": STR, "status": STR})), "everyone on duty")})},
        "/api/agent/queue": {"get": agent_op("the waiting line", {
            200: json_body(array(obj({"conversation_id": STR, "position": INT})), "in service order")})},
        "/api/agent/conversations": {"get": agent_op("open conversations", {
            200: json_body(array(obj({"conversation_id": STR, "state": STR})), "waiting first")},
            parameters=[query("mine", {"enum": ["1", "true", "yes", "0", "false", "no"]}, "only mine")])},
        "/api/agent/conversations/{cid}": {
            "get": agent_op("one conversation: transcript, reasons, candidates", {
                200: json_body(obj({"conversation_id": STR, "state": STR}), "the conversation")}, parameters=[CID]),
            "delete": agent_op("erase everything kept about the conversation (the shopper asked); admins only, "
                               "audited (who, when, which id)", {
                200: json_body(obj({"conversation_id": STR, "erased": BOOL, "removed": ANY_OBJECT}),
                               "erased: how many events, tickets, uploads… were removed"),
                403: error("not an admin, or a cookie-authenticated change from another site")},
                parameters=[CID])},
        "/api/agent/conversations/{cid}/claim": {"post": agent_op("take a waiting conversation", {
            200: json_body(changed, "assigned to me")}, parameters=[CID])},
        "/api/agent/conversations/{cid}/messages": {"post": agent_op("answer the shopper", {
            201: json_body(ref("Event"), "the stored agent_message")}, parameters=[CID], body=text_body)},
        "/api/agent/conversations/{cid}/notes": {"post": agent_op("a private note", {
            201: json_body(ref("Event"), "the stored agent_note")}, parameters=[CID], body=text_body)},
        "/api/agent/conversations/{cid}/transfer": {"post": agent_op("to a colleague or a group", {
            200: json_body(changed, "transferred")}, parameters=[CID],
            body=request_json(obj(optional={"agent": STR, "group": STR})))},
        "/api/agent/conversations/{cid}/close": {"post": agent_op("end the handoff", {
            200: json_body(changed, "closed")}, parameters=[CID],
            body=request_json(obj(optional={"resolution": STR}), required=False))},
        "/api/agent/conversations/{cid}/typing": {"post": agent_op("show the shopper that I am typing", {
            200: json_body(obj({"ok": BOOL}), "shown")}, parameters=[CID],
            body=request_json(obj(optional={"on": BOOL})))},
        "/api/agent/canned": {"get": agent_op("canned replies matching a query", {
            200: json_body(array(ANY_OBJECT), "matches")},
            parameters=[query("q", STR, "search"), query("language", {"enum": ["zh", "en"]}, "language")])},
        "/api/agent/tickets": {"get": agent_op("tickets (left messages)", {
            200: json_body(array(ref("Ticket")), "tickets")},
            parameters=[query("status", {"enum": ["pending", "in_progress", "resolved"]}, "only these")])},
        "/api/agent/tickets/{ticket_id}": {"patch": agent_op("change a ticket's status and/or answer it", {
            200: json_body(ref("Ticket"), "the ticket")}, parameters=[path_param("ticket_id", "ticket number")],
            body=request_json(obj(optional={"status": {"enum": ["pending", "in_progress", "resolved"]},
                                            "reply": STR})))},
        "/api/agent/stats": {"get": agent_op("statistics over the last days", {
            200: json_body(ANY_OBJECT, "figures")}, parameters=[query("days", NUM, "0.01 to 365")])},
        **_knowledge_api(),
        "/api/agent/ws": {"get": operation("agent", "live console events (WebSocket upgrade)", {
            101: empty("switching to WebSocket"), 400: empty("not a WebSocket upgrade"), 401: NO_AGENT,
            403: OTHER_SITE}, security=AGENT)},
    }


def _knowledge_api() -> dict[str, Any]:
    """The console's Knowledge page (bot/knowledge/routes.py): every agent reads, editors and admins publish."""
    refused = error("publishing needs the editor or admin role")
    invalid = error("the entry is malformed (the message says what to fix); nothing was published")
    stale = error("another version was published since `based_on`, or the id exists already; nothing changed")
    change = obj(optional={"summary": STR, "based_on": INT})
    published = json_body(ref("KnowledgeChange"), "the new version (served by this worker already)")
    entry_id = path_param("entry_id", "the entry's id")
    return {
        "/api/agent/knowledge": {"get": agent_op("the FAQ entries with their last 7/30 days", {
            200: json_body(obj({"version": INT, "head": INT, "may_publish": BOOL, "categories": array(STR),
                                "entries": array(ref("FAQEntry"))}), "entries")},
            parameters=[query("q", STR, "words to look for"), query("category", STR, "only this category")])},
        "/api/agent/knowledge/gaps": {"get": agent_op("unanswered questions grouped by meaning, largest first", {
            200: json_body(obj({"days": NUM, "unanswered": INT, "groups": array(obj(
                {"count": INT, "language": STR, "questions": array(STR), "replies": array(STR),
                 "suggested": {"type": ["object", "null"]}, "draft": ref("FAQEntry")}))}), "groups")},
            parameters=[query("days", NUM, "0.01 to 365 (default 30)")])},
        "/api/agent/knowledge/preview": {"post": agent_op("what a change would do to the last real questions", {
            200: json_body(obj({"replayed": INT, "searched": INT, "test_questions": INT, "test_regressions": array(STR),
                                "changed": array(ANY_OBJECT), "newly_answered": INT,
                                "no_longer_answered": INT, "person_wanted_now_bot": array(STR)}), "the effect"),
            400: invalid, 403: refused},
            body=request_json(obj(optional={"entry": ref("FAQEntry"), "delete": STR})))},
        "/api/agent/knowledge/versions": {"get": agent_op("the published versions, newest first", {
            200: json_body(obj({"version": INT, "head": INT, "versions": array(ANY_OBJECT)}), "history")})},
        "/api/agent/knowledge/entries": {"post": agent_op("add an entry (publishes a version)", {
            201: published, 400: invalid, 403: refused, 409: stale},
            body=request_json({**change, "properties": {**change["properties"], "entry": ref("FAQEntry")}}))},
        "/api/agent/knowledge/entries/{entry_id}": {
            "put": agent_op("replace an entry (publishes a version)", {
                200: published, 400: invalid, 403: refused, 404: error("no such entry"), 409: stale},
                parameters=[entry_id],
                body=request_json({**change, "properties": {**change["properties"], "entry": ref("FAQEntry")}})),
            "patch": agent_op("disable or enable an entry (publishes a version)", {
                200: published, 400: invalid, 403: refused, 404: error("no such entry"), 409: stale},
                parameters=[entry_id],
                body=request_json({**change, "properties": {**change["properties"], "disabled": BOOL}})),
            "delete": agent_op("delete an entry (publishes a version)", {
                200: published, 403: refused, 404: error("no such entry"), 409: stale},
                parameters=[entry_id], body=request_json(change, required=False))},
        "/api/agent/knowledge/rollback": {"post": agent_op("publish an older version's entries again", {
            200: published, 400: invalid, 403: refused, 404: error("no such version"), 409: stale},
            body=request_json(obj({"version": INT}, {"summary": STR})))},
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; callers must not change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for part in (_core(), _rest(), _push_webhooks(), _widget(), _pages(), _console(), _agent_api()):
        paths.update(part)
    return {
        "openapi": "3.1.0",
        "info": {"title": "kefu", "version": VERSION,
                 "description": "kefu's HTTP API: Rasa-compatible REST channel and parse, trackers, the chat "
                                "bubble, WeChat and Messenger webhooks, the agent console's API. Every error is "
                                'JSON {"error": "…"}; a header that is not UTF-8 gets 400 on any route. WeChat '
                                "and Messenger routes exist only when those channels are configured."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }
