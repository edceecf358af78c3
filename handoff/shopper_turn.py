"""The handoff's part of a shopper's turn (the engine's HandoffPort). Both calls run inside the turn, which holds
the conversation's lock; the events they return are stored by the turn.

`request`: after `handoff_requested`, outside business hours (or on a closed date) `handoff_unavailable{closed}`
with when the team is back; otherwise the shopper joins the line — straight to a free online agent, or `queued`
with their place (`nobody_online` when nobody is online yet: they may wait for the first agent to log in, or
leave a message). On a channel with a reply-by promise the wait gets its reply-by time here, once
(handoff/promise.py), and every event of the wait carries it; a message left keeps it on its ticket.

`shopper_message`: every shopper message first. While waiting or with an agent, the message is the agent's (or
cancels the wait, or leaves the line to leave a message). After a handoff it may be the rating, the choice to
leave a message (only an explicit one: "留言" / "leave a message" / `/leave_message`), the message itself, or a
question about tickets. Anything else is the bot's to answer (None).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.dialogue import events as ev
from bot.dialogue.engine import TurnFailed
from bot.dialogue.escalation import is_explicit_human_request
from bot.dialogue.tracker import Tracker
from bot.language import shopper_writes_traditional
from bot.notices import text
from bot.stores import TrackerStore
from handoff import events, routing, shopper
from handoff.hours import BusinessHours
from handoff.promise import ReplyPromises
from handoff.queue import HandoffQueue
from handoff.records import HandoffRecord, HandoffRecords
from handoff.settings import HandoffSettings
from handoff.tickets import Ticket, Tickets

log = logging.getLogger(__name__)


def _say(name: str, language: str) -> ev.Event:
    return ev.bot(text(name, language), {}, name)


class ShopperTurn:
    def __init__(self, trackers: TrackerStore, records: HandoffRecords, queue: HandoffQueue, tickets: Tickets,
                 hours: BusinessHours, promises: ReplyPromises, settings: HandoffSettings,
                 now: Callable[[], float] = time.time) -> None:
        self.trackers = trackers
        self.records = records
        self.queue = queue
        self.tickets = tickets
        self.hours = hours
        self.promises = promises
        self.settings = settings
        self.now = now

    async def request(self, tracker: Tracker, event: ev.Event) -> list[ev.Event]:
        now = self.now()
        language = event.get("language") or _language(tracker)
        channel = await self._channel(tracker)
        reply_by = self.promises.reply_by(channel, now)
        traditional = shopper_writes_traditional(tracker.applied_events(), language)
        if not self.hours.is_open(now):
            return [events.unavailable("closed", self.hours, now, language, reply_by, traditional)]
        record = await self._new_record(tracker, event, now, language, channel)
        return [await self.queue.enqueue(record.but(reply_by=reply_by, traditional=traditional))]

    async def shopper_message(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event] | None:
        """Events for a shopper message that is not the bot's to answer, or None to let the bot answer."""
        message = user_event.get("text") or ""
        language = _language(tracker)
        state = tracker.handoff_state
        if state == "requested" and await self.records.get(tracker.sender_id) is None:
            # the request never got an answer (the queue failed during it): say so rather than wait forever
            log.warning("conversation %s was %s without a handoff record; back to the bot", tracker.sender_id, state)
            return [events.event(ev.HANDOFF_CANCELLED, by="system"), user_event, _say("handoff_lost", language)]
        if state in ("requested", "queued"):
            return await self._while_waiting(tracker, user_event, language)
        if state == "assigned":
            return [user_event]
        if shopper.rating_pending(tracker) and (score := shopper.rating_score(message)) is not None:
            return [user_event, events.event(ev.CSAT, score=score), _say("utter_thanks_for_rating", language)]
        return (await self._leaving_a_message(tracker, user_event, language)
                or await self._ticket_question(tracker, user_event, language))

    async def _while_waiting(self, tracker: Tracker, user_event: ev.Event, language: str) -> list[ev.Event]:
        message = user_event.get("text") or ""
        if shopper.is_cancel(message):
            await self.queue.leave(tracker.sender_id)
            return [user_event, events.event(ev.HANDOFF_CANCELLED, by="shopper"),
                    _say("utter_handoff_cancelled", language)]
        chose, given = shopper.leave_message(message)
        if not chose:
            return [user_event]  # for the agent
        await self.queue.leave(tracker.sender_id)
        reason = "offline" if shopper.nobody_online(tracker) else "waiting"
        return [user_event, events.event(ev.HANDOFF_CANCELLED, by="shopper", leave_message=True),
                await self._message(tracker, given, reason, language)]

    async def _leaving_a_message(self, tracker: Tracker, user_event: ev.Event, language: str
                                 ) -> list[ev.Event] | None:
        message = user_event.get("text") or ""
        asked = shopper.message_pending(tracker)
        if asked is not None:  # the shopper chose to leave a message and was asked for it: this is it
            if shopper.is_cancel(message):
                return [user_event, _say("utter_ticket_cancelled", language)]
            if not shopper.is_payload(message) and not is_explicit_human_request(message):
                chose, given = shopper.leave_message(message)
                return [user_event, await self._message(tracker, given if chose else message, asked, language)]
        offer = shopper.message_offer(tracker)
        if offer is None:
            return None
        if shopper.unavailable_pending(tracker) is not None and shopper.is_cancel(message):
            return [user_event, events.event(ev.HANDOFF_CANCELLED, by="shopper"),
                    _say("utter_ticket_cancelled", language)]
        chose, given = shopper.leave_message(message)
        if not chose:
            return None  # a question for the bot: the offer stands
        return [user_event, await self._message(tracker, given, str(offer.get("reason") or "offline"), language)]

    async def _message(self, tracker: Tracker, given: str, reason: str, language: str) -> ev.Event:
        """The ticket if the message came with the choice, else the question that asks for it."""
        if not given:
            return shopper.message_request(language, reason)
        channel = await self._channel(tracker)
        reply_by = self.promises.for_wait(channel, tracker.events, self.now())
        try:
            ticket = await self.tickets.create(tracker.sender_id, given, language, channel, reason, reply_by)
        except Exception as exc:  # the shopper must hear that it failed, not get the bot's answer instead
            log.exception("could not make a ticket of a message in %s", tracker.sender_id)
            raise TurnFailed("your message could not be saved as a ticket; please send it again") from exc
        traditional = shopper_writes_traditional(tracker.applied_events(), language, {"event": "user", "text": given})
        return events.event(ev.TICKET_CREATED, ticket_id=ticket.ticket_id, text=given,
                            **events.spoken(language, traditional), **events.promised(reply_by))

    async def _ticket_question(self, tracker: Tracker, user_event: ev.Event, language: str
                               ) -> list[ev.Event] | None:
        # only messages left here; other tickets (the shop's own, by number) are the bot's `ticket_status`
        if not shopper.asks_ticket_status(user_event.get("text") or ""):
            return None
        tickets = await self.tickets.of_conversation(tracker.sender_id)
        if not tickets:
            return None
        return [user_event, ev.bot(_ticket_status(tickets, language), {}, "utter_ticket_status")]

    async def _channel(self, tracker: Tracker) -> str:
        """The conversation's channel (its first message's), which picks the reply-by promise."""
        meta = await self.trackers.get_meta(tracker.sender_id)
        return str(meta.get("channel") or tracker.latest_input_channel or "rest")

    async def _new_record(self, tracker: Tracker, event: ev.Event, now: float, language: str,
                          channel: str) -> HandoffRecord:
        cid = tracker.sender_id
        meta = await self.trackers.get_meta(cid)
        reason = str(event.get("reason") or "explicit_request")
        priority, rank = routing.priority_of(self.settings, reason, meta.get("tier"), tracker.slots)
        categories = {hit["id"]: hit.get("category") for e in tracker.events if e.get("event") == "user"
                      for hit in ((e.get("parse_data") or {}).get("faq") or []) if hit.get("category")}
        group = routing.group_of(self.settings, reason, event.get("candidates") or [], categories)
        return HandoffRecord(conversation_id=cid, state="queued", priority=priority, rank=rank, reason=reason,
                             language=language, channel=channel, group=group, requested_at=now,
                             enqueued_at=now, queued_at=now)


def _language(tracker: Tracker) -> str:
    return tracker.spoken_language or "en"


def _ticket_status(tickets: list[Ticket], language: str) -> str:
    return "\n".join(text("ticket_status", language, ticket_id=t.ticket_id,
                          status=text(f"ticket_{t.status}", language)) for t in tickets[-3:])
