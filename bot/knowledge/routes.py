"""The console's Knowledge page: /api/agent/knowledge/*. Every agent reads; admins and editors publish.

Each change is one published version (bot/knowledge/versions.py) attributed to the agent who made it, served by
this worker before the answer returns and by the others within about a second. A change that fails the checks
(bot/knowledge/entries.py) is refused with the reason and publishes nothing; one based on a version that is no
longer the newest (`based_on`, optional) is refused with 409 so no one's edit is overwritten unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.app_keys import AGENT, SETTINGS, STORES
from bot.formats.yaml_io import DataError
from bot.http import HTTPError, read_json
from bot.knowledge import entries as checks
from bot.knowledge import gaps, preview
from bot.knowledge.keys import KNOWLEDGE, USAGE
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.usage import Usage, empty
from bot.knowledge.versions import LiveEntry, PublishConflict, changed_ids
from bot.nlu.embedder import embedder_for
from handoff.agents import AgentAccount
from handoff.console.web import agent_api, json_response

routes = web.RouteTableDef()


def _live(request: web.Request) -> LiveKnowledge:
    return request.app[KNOWLEDGE]


def _usage(request: web.Request) -> Usage:
    return request.app[USAGE]


def _may_publish(account: AgentAccount) -> None:
    if not account.edits_knowledge:
        raise HTTPError(403, "publishing FAQ changes needs the editor or admin role; ask an admin "
                             "(kefu agents add NAME --role editor)")


def _matches(live: LiveEntry, query: str) -> bool:
    entry = live.entry
    texts = [entry.id, entry.category, *entry.tags, *entry.titles.values(), *entry.answers.values(),
             *(q for qs in entry.questions.values() for q in qs)]
    return any(query in text.lower() for text in texts)


@routes.get("/api/agent/knowledge")
@agent_api
async def api_knowledge(request: web.Request, account: AgentAccount) -> web.Response:
    """Every entry (filtered by `q` and `category`), with how it did in the last 7 and 30 days."""
    live = _live(request)
    query = request.query.get("q", "").strip().lower()
    category = request.query.get("category", "")
    usage = await _usage(request).figures()
    everything = live.entries()
    shown = [e for e in everything if (not category or e.entry.category == category)
             and (not query or _matches(e, query))]
    return json_response({
        "version": live.number, "head": live.head, "may_publish": account.edits_knowledge,
        "categories": sorted({e.entry.category for e in everything}),
        "entries": [{**checks.as_item(e), "disabled": e.disabled, "usage": usage.get(e.id, empty())}
                    for e in shown],
    })


@routes.get("/api/agent/knowledge/versions")
@agent_api
async def api_versions(request: web.Request, account: AgentAccount) -> web.Response:
    live = _live(request)
    return json_response({"version": live.number, "head": live.head,
                          "versions": await live.versions.history()})


@routes.get("/api/agent/knowledge/gaps")
@agent_api
async def api_gaps(request: web.Request, account: AgentAccount) -> web.Response:
    """What the bot could not answer in the last `days` days, grouped by meaning (bot/knowledge/gaps.py)."""
    try:
        days = min(max(float(request.query.get("days", "30")), 0.01), 365)
    except ValueError:
        raise HTTPError(400, "days must be a number") from None
    agent = request.app[AGENT]
    found = await gaps.collect(request.app[STORES].trackers, days)
    groups = await asyncio.get_running_loop().run_in_executor(
        agent.executor, gaps.group, found, embedder_for(agent.model.config.kefu.embedding), agent.model.faq)
    return json_response({"days": days, "unanswered": len(found), "groups": groups})


@routes.post("/api/agent/knowledge/preview")
@agent_api
async def api_preview(request: web.Request, account: AgentAccount) -> web.Response:
    """What `{"entry": …}` (added or edited) or `{"delete": id}` would change in the answers to the last real
    questions (bot/knowledge/preview.py); publishes nothing."""
    _may_publish(account)
    body = await _body(request)
    live, agent = _live(request), request.app[AGENT]
    current = live.entries()
    if isinstance(body.get("delete"), str):
        _position(current, body["delete"])
        entries = [e for e in current if e.id != body["delete"]]
    else:
        entry = _checked(body.get("entry"))
        entries = [entry if e.id == entry.id else e for e in current] + (
            [] if any(e.id == entry.id for e in current) else [entry])
    candidate = await live.candidate(entries)
    asked = preview.project_questions(request.app[SETTINGS].project_dir)
    asked += await preview.recent_questions(request.app[STORES].trackers)
    threshold = agent.model.config.effective_thresholds().faq
    result = await asyncio.get_running_loop().run_in_executor(
        agent.executor, preview.compare, agent.model.faq, candidate, asked, threshold,
        set(changed_ids(current, entries)), embedder_for(agent.model.config.kefu.embedding))
    return json_response(result)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object")
    based_on = body.get("based_on")
    if based_on is not None and (not isinstance(based_on, int) or isinstance(based_on, bool) or based_on < 0):
        raise HTTPError(400, "based_on must be the version number the change was made on")
    if not isinstance(body.get("summary", ""), str):
        raise HTTPError(400, "summary must be a text")
    return body


def _checked(item: Any) -> LiveEntry:
    try:
        return checks.parse_entry(item)
    except DataError as exc:
        raise HTTPError(400, exc.message) from None


async def _publish(request: web.Request, account: AgentAccount, body: dict[str, Any], summary: str,
                   change: Callable[[list[LiveEntry]], list[LiveEntry]], touched: LiveEntry | None = None,
                   status: int = 200) -> web.Response:
    live = _live(request)
    before = live.entries()
    entries = change(before)
    warnings: list[str] = []
    if touched is not None and not touched.disabled:
        loop = asyncio.get_running_loop()
        was = next((e for e in before if e.id == touched.id), None)
        warnings = await loop.run_in_executor(request.app[AGENT].executor, checks.look_alikes, touched,
                                              request.app[AGENT].model.faq, was)
    try:
        version = await live.publish(entries, account.username, body.get("summary") or summary, body.get("based_on"))
    except PublishConflict as exc:
        raise HTTPError(409, str(exc)) from None
    _usage(request).forget()
    return json_response({"version": version.meta(), "warnings": warnings}, status=status)


def _position(entries: list[LiveEntry], entry_id: str) -> int:
    found = next((i for i, e in enumerate(entries) if e.id == entry_id), None)
    if found is None:
        raise HTTPError(404, f"there is no FAQ entry {entry_id!r}")
    return found


@routes.post("/api/agent/knowledge/entries")
@agent_api
async def api_add(request: web.Request, account: AgentAccount) -> web.Response:
    """A new entry, at the end of the FAQ."""
    _may_publish(account)
    body = await _body(request)
    entry = _checked(body.get("entry"))
    if any(e.id == entry.id for e in _live(request).entries()):
        raise HTTPError(409, f"an FAQ entry {entry.id!r} exists already: edit it, or choose another id")
    return await _publish(request, account, body, f"add {entry.id}", lambda entries: [*entries, entry], entry, 201)


@routes.put("/api/agent/knowledge/entries/{entry_id}")
@agent_api
async def api_edit(request: web.Request, account: AgentAccount) -> web.Response:
    """The entry replaced by the one given (same id)."""
    _may_publish(account)
    entry_id = request.match_info["entry_id"]
    body = await _body(request)
    item = body.get("entry")
    if isinstance(item, dict) and item.get("id", entry_id) != entry_id:
        raise HTTPError(400, "an entry's id cannot change: add a new entry and delete this one")
    entry = _checked({**item, "id": entry_id} if isinstance(item, dict) else item)
    _position(_live(request).entries(), entry_id)

    def change(entries: list[LiveEntry]) -> list[LiveEntry]:
        return [entry if e.id == entry_id else e for e in entries]

    return await _publish(request, account, body, f"edit {entry_id}", change, entry)


@routes.patch("/api/agent/knowledge/entries/{entry_id}")
@agent_api
async def api_disable(request: web.Request, account: AgentAccount) -> web.Response:
    """`{"disabled": true}` keeps the entry without answering from it; false answers from it again."""
    _may_publish(account)
    entry_id = request.match_info["entry_id"]
    body = await _body(request)
    if not isinstance(body.get("disabled"), bool):
        raise HTTPError(400, 'give {"disabled": true} or {"disabled": false}')
    entries = _live(request).entries()
    current = entries[_position(entries, entry_id)]
    updated = LiveEntry(current.entry, body["disabled"])

    def change(entries: list[LiveEntry]) -> list[LiveEntry]:
        return [updated if e.id == entry_id else e for e in entries]

    verb = "disable" if updated.disabled else "enable"
    return await _publish(request, account, body, f"{verb} {entry_id}", change, updated)


@routes.delete("/api/agent/knowledge/entries/{entry_id}")
@agent_api
async def api_delete(request: web.Request, account: AgentAccount) -> web.Response:
    _may_publish(account)
    entry_id = request.match_info["entry_id"]
    body = await _body(request)
    _position(_live(request).entries(), entry_id)
    return await _publish(request, account, body, f"delete {entry_id}",
                          lambda entries: [e for e in entries if e.id != entry_id])


@routes.post("/api/agent/knowledge/rollback")
@agent_api
async def api_rollback(request: web.Request, account: AgentAccount) -> web.Response:
    """`{"version": N}`: N's entries published again as a new version (0: the trained model's FAQ)."""
    _may_publish(account)
    body = await _body(request)
    number = body.get("version")
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise HTTPError(400, 'give {"version": N}, the version to go back to')
    try:
        version = await _live(request).rollback(number, account.username)
    except LookupError as exc:
        raise HTTPError(404, str(exc)) from None
    except PublishConflict as exc:
        raise HTTPError(409, str(exc)) from None
    _usage(request).forget()
    return json_response({"version": version.meta(), "warnings": []})
