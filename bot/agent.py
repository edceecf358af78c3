"""The message path (design.md): dedupe → parse → lock → load tracker → human or bot turn → persist.

Channels hand in a `UserMessage` and render the events that come back; they know nothing of NLU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.action_runner import ActionRunner
from bot.dialogue import events as ev
from bot.dialogue.engine import DialogueEngine, HandoffPort, TurnFailed
from bot.dialogue.tracker import Tracker
from bot.dialogue.tracker_cache import TrackerCache
from bot.formats.faq_data import FAQEntry
from bot.identity import IdentityCheck
from bot.language import (
    bot_message_in_traditional,
    conversation_language,
    detect_language,
    normalise,
    shopper_writes_traditional,
)
from bot.metrics import Metrics
from bot.model import TrainedModel
from bot.parsing import BatchedParser
from bot.stores import Stores

log = logging.getLogger(__name__)


MAX_TEXT_CHARS = 5000


@dataclass
class UserMessage:
    conversation_id: str
    text: str
    channel: str = "rest"
    sender: str | None = None
    message_id: str | None = None  # the channel's id, for deduplication of redeliveries
    metadata: dict[str, Any] = field(default_factory=dict)


class Agent:
    def __init__(self, model: TrainedModel, stores: Stores, actions: ActionRunner,
                 handoff: HandoffPort | None = None, executor: ThreadPoolExecutor | None = None,
                 metrics: Metrics | None = None, identity: IdentityCheck | None = None) -> None:
        self.model = model
        self.identity = identity or IdentityCheck(None)  # without a secret, no customer_id is believed
        self.metrics = metrics
        self.stores = stores
        self.executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="kefu-nlu")
        self.parser = BatchedParser(model, self.executor)
        self.engine = DialogueEngine(model.domain, model.rules, model.memo, model.config.kefu,
                                     model.config.effective_thresholds(), actions, handoff, model.faq.entries,
                                     learned=model.learned)
        self.faq_listeners: list[Callable[[], None]] = []  # told when `use_faq` swaps the index (help centre)
        # told of each turn's events once stored (the FAQ's popularity): called on the event loop, must be quick
        self.turn_listeners: list[Callable[[str, list[ev.Event]], None]] = []
        self.tracker_cache = TrackerCache(stores.trackers, model.domain)

    @property
    def domain(self):
        return self.model.domain

    @property
    def default_language(self) -> str:
        return self.model.config.kefu.default_language

    async def language(self, conversation_id: str, default: str | None = None) -> str:
        """Which language the conversation speaks now (kept in its meta by every turn: no events are read);
        `default` (else the bot's) before its first turn."""
        meta = await self.stores.trackers.get_meta(conversation_id)
        return normalise(meta.get("language"), default or self.default_language)

    async def parse(self, text: str) -> dict[str, Any]:
        return await self.parser.parse(text)

    def use_faq(self, index: Any) -> None:
        """Serve another FAQ index (a published knowledge version, bot/knowledge/live.py): one reference
        assignment, so a turn that began on the old index (the parser reads it once per batch) ends on it."""
        self.model.faq = index
        self.engine.faq_entries = index.entries
        for listener in self.faq_listeners:
            listener()

    def faq_entries(self) -> list[FAQEntry]:
        """The FAQ as written (questions and answers in both languages, categories), in the file's order."""
        return list(self.model.faq.entries.values())

    async def search_faq(self, text: str, language: str | None = None, k: int = 5) -> list[dict[str, Any]]:
        """The FAQ entries that best match `text`, best first, as `{"id", "score"}` (calibrated: the bot answers
        from the FAQ above `thresholds.faq`), searched as the bot searches, off the event loop. For pages that
        search the FAQ (help centre, suggestions); `language`: the text's own by default."""
        language = language or detect_language(text, self.default_language)
        hits = await asyncio.get_running_loop().run_in_executor(self.executor, self.model.faq.search, text,
                                                                language, k)
        return [{"id": hit.id, "score": hit.score} for hit in hits]

    async def tracker(self, conversation_id: str) -> Tracker | None:
        """The conversation as stored, read outside any turn (built off the event loop: it may be long)."""
        events = await self.stores.trackers.events(conversation_id)
        if not events:
            return None
        return await asyncio.to_thread(Tracker.from_events, conversation_id, events, self.domain)

    def forget_conversation(self, conversation_id: str) -> None:
        """Drop whatever this worker holds in memory about the conversation. Erasure (bot/erasure.py) calls it,
        under the conversation's lock, once the stored data is gone; anything that caches a conversation (a
        tracker cache) forgets it here."""
        self.tracker_cache.forget(conversation_id)

    async def handle(self, message: UserMessage, resend: bool = False) -> list[ev.Event]:
        """Process one shopper message; returns the events stored for it (with `seq`), [] for a duplicate — or,
        with `resend`, the duplicate's stored turn (a channel finishing what a stopped worker began)."""
        trackers = self.stores.trackers
        started = time.perf_counter()
        parse = await self.parse(message.text)  # needs no tracker: done before taking the lock
        async with trackers.lock(message.conversation_id):
            loaded = await self.tracker_cache.load(message.conversation_id)
            done = loaded.message_ids.get(message.message_id) if message.message_id else None
            if done is not None:
                # a redelivery: checked under the lock against what is stored, so a turn that failed
                # (nothing stored) is processed again when the channel retries
                log.info("duplicate message %s on %s ignored", message.message_id, message.channel)
                return _turn_at(loaded.events, done) if resend else []
            tracker = loaded.tracker
            first_turn = not tracker.events
            # what the meta says now (a bot without a `language` slot: what the events say, as for the meta)
            spoke = tracker.slots.get("language", tracker.spoken_language) or self.default_language
            new: list[ev.Event] = []
            if self._session_expired(tracker.events):
                new += self._session_start(tracker)
                for event in new:
                    tracker.apply(event)
            metadata = {**self.identity.verified(message.metadata),
                        **({"sender": message.sender} if message.sender else {})}
            user_event = ev.user(message.text, parse, message.channel, message.message_id, metadata)
            # The human side looks first: while a person holds the chat the bot stays silent (the message is
            # kept for the agent, or cancels the wait); after a handoff it may be a rating or a ticket.
            handled = await self._human_side(tracker, user_event)
            if handled is not None:
                new += handled
            else:
                new += await self.engine.respond(tracker, user_event)
            spoken = conversation_language(new, spoke)
            if first_turn:
                await trackers.set_meta(message.conversation_id, channel=message.channel,
                                        sender=message.sender or message.conversation_id, language=spoken)
            elif spoken != spoke:
                await trackers.set_meta(message.conversation_id, language=spoken)
            stored = await trackers.append(message.conversation_id, new)
            self.tracker_cache.stored(message.conversation_id, stored)
        self._record(message, stored, time.perf_counter() - started)
        for listener in self.turn_listeners:
            try:
                listener(message.conversation_id, stored)
            except Exception:  # the turn is stored and answered: a listener's bug must not turn it into an error
                log.exception("turn listener %r failed", listener)
        return stored

    async def _human_side(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event] | None:
        handoff = self.engine.handoff
        shopper_message = getattr(handoff, "shopper_message", None)
        if shopper_message is not None:
            try:
                handled = await shopper_message(tracker, user_event)
                if handled and shopper_writes_traditional(tracker.applied_events(), tracker.spoken_language,
                                                          user_event):
                    handled = [bot_message_in_traditional(e) if e.get("event") == "bot" else e for e in handled]
                return handled
            except TurnFailed:
                raise
            except Exception:  # the human side failing must not lose the message
                log.exception("handoff failed to take a message of %s", tracker.sender_id)
        return [user_event] if tracker.human_holds else None

    def _record(self, message: UserMessage, stored: list[ev.Event], seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.messages.labels(message.channel).inc()
        self.metrics.turn_seconds.observe(seconds)
        for event in stored:
            if event.get("event") == ev.HANDOFF_REQUESTED:
                self.metrics.handoffs.labels(event.get("reason") or "unknown").inc()

    def _session_expired(self, events: list[ev.Event]) -> bool:
        if not events:
            return True
        minutes = float(self.domain.session_config.get("session_expiration_time") or 0)
        return minutes > 0 and time.time() - float(events[-1].get("timestamp") or 0) > minutes * 60

    def _session_start(self, tracker: Tracker) -> list[ev.Event]:
        carried = []
        if tracker.events and self.domain.session_config.get("carry_over_slots_to_new_session", True):
            carried = [ev.slot(name, value) for name, value in tracker.slots.items()
                       if value is not None and name != "requested_slot"]
        return [ev.action("action_session_start"), ev.session_started(), *carried, ev.action("action_listen")]


def _turn_at(events: list[ev.Event], start: int) -> list[ev.Event]:
    """The user event at `start` and what the bot did before the next user message."""
    end = next((i for i in range(start + 1, len(events)) if events[i].get("event") == "user"), len(events))
    return events[start:end]
