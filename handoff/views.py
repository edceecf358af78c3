"""What the console shows: the queue, the open conversations, one conversation with everything an agent needs to
take over, colleagues, the agent's own settings and the statistics. Read-only views over the services, as JSON-ready
dicts. Conversations and tickets that wait for a person on a channel with a reply-by promise carry `reply_by` and
how it stands now (`reply`: due, due_soon or overdue, and the time left); lists show those due soon or overdue
first (handoff/promise.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.dialogue import events as ev
from bot.language import conversation_language
from bot.stores import TrackerStore
from handoff import stats
from handoff.agents import AgentAccount
from handoff.errors import NotFound
from handoff.hours import BusinessHours
from handoff.permissions import Permissions
from handoff.promise import ReplyPromises, urgency_order
from handoff.records import HandoffRecord, HandoffRecords
from handoff.roster import Roster
from handoff.settings import HandoffSettings
from handoff.tickets import Tickets


def _order_numbers(events: list[ev.Event]) -> list[str]:
    found: list[str] = []
    for event in events:
        values = []
        if event.get("event") == "user":
            values = [e.get("value") for e in (event.get("parse_data") or {}).get("entities") or []
                      if e.get("entity") == "order_id"]
        elif event.get("event") == "slot" and event.get("name") == "order_id":
            values = [event.get("value")]
        found += [str(v) for v in values if v and str(v) not in found]
    return found


class ConsoleViews:
    def __init__(self, trackers: TrackerStore, records: HandoffRecords, roster: Roster, tickets: Tickets,
                 permissions: Permissions, hours: BusinessHours, promises: ReplyPromises, settings: HandoffSettings,
                 now: Callable[[], float] = time.time) -> None:
        self.trackers = trackers
        self.records = records
        self.roster = roster
        self.tickets = tickets
        self.permissions = permissions
        self.hours = hours
        self.promises = promises
        self.settings = settings
        self.now = now

    def _reply(self, record: HandoffRecord | None, now: float) -> dict[str, Any]:
        """The record's promise: its reply-by time, and how it stands until a person has answered."""
        if record is None or record.reply_by is None:
            return {"reply_by": None, "reply": None}
        standing = None if record.replied_at else self.promises.standing(record.channel, record.reply_by, now)
        return {"reply_by": record.reply_by, "reply": standing}

    async def me(self, account: AgentAccount) -> dict[str, Any]:
        return {"agent": account.public(), "status": await self.roster.chosen_status(account.username),
                "groups": sorted(self.settings.groups), "resolutions": self.settings.resolutions,
                "timezone": self.settings.timezone, "hours": self.hours.describe_week(),
                "open_now": self.hours.is_open(self.now())}

    async def colleagues(self) -> list[dict[str, Any]]:
        """Everyone, for transfers: status, load, capacity, languages, groups."""
        return [{"username": a.username, "name": a.name, "status": a.status, "load": a.load,
                 "capacity": a.capacity, "languages": a.languages, "groups": a.groups}
                for a in await self.roster.on_duty()]

    async def queue(self) -> list[dict[str, Any]]:
        """Those due soon or overdue first, then the line in service order (`position` is the place in it)."""
        now = self.now()
        return urgency_order([
            {"conversation_id": r.conversation_id, "position": i, "priority": r.priority, "reason": r.reason,
             "language": r.language, "channel": r.channel, "waiting_s": round(now - r.queued_at, 1),
             "group": r.group, "eta_s": r.told_eta_s, **self._reply(r, now)}
            for i, r in enumerate(await self.records.waiting(), start=1)])

    async def open_conversations(self, account: AgentAccount, mine: bool = False) -> list[dict[str, Any]]:
        """Those due soon or overdue first, then waiting ones (in service order), then those with an agent;
        `mine`: only the agent's own."""
        now = self.now()
        records = sorted(await self.records.open(), key=lambda r: (r.state != "queued", r.order))
        return urgency_order([
            {"conversation_id": r.conversation_id, "state": r.state, "agent": r.agent,
             "agent_name": r.agent_name, "channel": r.channel, "language": r.language, "priority": r.priority,
             "reason": r.reason, "group": r.group, "waiting_s": round(now - r.queued_at, 1),
             "requested_at": r.requested_at, "assigned_at": r.assigned_at, **self._reply(r, now)}
            for r in records if not mine or r.agent == account.username])

    async def tickets_list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Tickets, newest first, except that unanswered ones due soon or overdue come first."""
        now = self.now()
        listed = []
        for ticket in await self.tickets.all(status):
            waiting = not ticket.replies and ticket.status != "resolved"
            reply = self.promises.standing(ticket.channel, ticket.reply_by, now) if waiting else None
            listed.append({**ticket.as_dict(), "reply": reply})
        return urgency_order(listed)

    async def conversation(self, conversation_id: str, account: AgentAccount) -> dict[str, Any]:
        """Everything an agent needs to take over: transcript, why the bot gave up and its best guesses, and
        what the shop knows about the shopper."""
        events = await self.trackers.events(conversation_id)
        if not events:
            raise NotFound("unknown conversation")
        await self.permissions.readable(conversation_id, account, events)
        record = await self.records.get(conversation_id)
        meta = await self.trackers.get_meta(conversation_id)
        requested = next((e for e in reversed(events) if e.get("event") == ev.HANDOFF_REQUESTED), None)
        language = conversation_language(events, "en")
        slots = {e["name"]: e.get("value") for e in events if e.get("event") == "slot" and e.get("name")}
        return {
            "conversation_id": conversation_id,
            "state": record.state if record else "closed" if requested else "bot",
            "agent": record.agent if record else None,
            "agent_name": record.agent_name if record else None,
            "priority": record.priority if record else None,
            "group": record.group if record else None,
            "waiting_s": round(self.now() - record.queued_at, 1) if record else None,
            **self._reply(record, self.now()),
            "reason": (requested or {}).get("reason"),
            "candidates": ((requested or {}).get("candidates") or [])[:3],
            "channel": meta.get("channel") or (record.channel if record else None),
            "language": language,
            "can_write": self.permissions.may_write(record, account),
            "details": {"channel": meta.get("channel"), "language": language, "sender": meta.get("sender"),
                        "tier": meta.get("tier"), "order_numbers": _order_numbers(events),
                        "wechat": meta.get("wechat"), "messenger": meta.get("messenger"), "email": meta.get("email"),
                        "slots": {k: v for k, v in slots.items() if v is not None and k != "requested_slot"}},
            "tickets": [t.as_dict() for t in await self.tickets.of_conversation(conversation_id)],
            "events": events,
        }

    async def statistics(self, days: float) -> dict[str, Any]:
        """The statistics page: figures from the conversations' events, plus the queue and tickets right now."""
        tickets = await self.tickets.all()
        counts = {s: sum(t.status == s for t in tickets) for s in ("pending", "in_progress", "resolved")}
        figures = await stats.compute(self.trackers, self.settings.timezone, days, self.now(), counts)
        figures["queue_length"] = len(await self.records.waiting())
        figures["agents_online"] = sum(a.status == "online" for a in await self.roster.on_duty())
        figures["reply_within"] = {channel: rule.model_dump() for channel, rule in self.promises.rules.items()}
        return figures
