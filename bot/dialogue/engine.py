"""One bot turn: from a parsed user message to the events that answer it.

Order of decisions (design.md): rules > active form > FAQ answer (if confident) > memorised stories >
fallback / escalation. Everything the bot does is returned as events; nothing else keeps state.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.action_runner import ActionError, ActionResult, ActionRunner
from bot.config import KefuSettings, Thresholds
from bot.dialogue import clarify, forms
from bot.dialogue import events as ev
from bot.dialogue.defaults import default_text
from bot.dialogue.ensemble import PolicyEnsemble
from bot.dialogue.escalation import (
    EXPLICIT_REQUEST,
    LOW_FAQ_SCORE,
    NLU_FALLBACK,
    REJECTED_ANSWER,
    REPEATED_FALLBACK,
    Decision,
    EscalationPolicy,
    candidates,
    faq_base,
)
from bot.dialogue.learned import LearnedPolicy
from bot.dialogue.policies import MemoizationPolicy, Prediction, RulePolicy
from bot.dialogue.responses import render
from bot.dialogue.states import LISTEN, loop_status
from bot.dialogue.tracker import Tracker
from bot.formats.domain import Domain, Form
from bot.formats.faq_data import FAQEntry
from bot.language import bot_message_in_traditional, language_of_message, shopper_writes_traditional

log = logging.getLogger(__name__)

MAX_ACTIONS_PER_TURN = 10
FAQ_ACTION = "utter_faq"
FALLBACK_ACTION = "action_default_fallback"
HANDOFF_ACTION = "action_handoff"


class TurnFailed(RuntimeError):
    """Raised by the handoff side when a turn must fail as a whole, nothing stored, rather than go on to the bot:
    a shopper's message that could not be made a ticket. The channel reports the error and may send it again."""


class HandoffPort(Protocol):
    """The human side (handoff/). `request` gets `handoff_requested` and returns what follows: `queued`,
    `agent_assigned`, or `handoff_unavailable` (closed / nobody on duty). `shopper_message` sees every shopper
    message first and returns the events to store instead of a bot turn (a message for the agent, a cancel, a
    rating, a ticket), or None to let the bot answer. Both run inside the shopper's turn, under its lock."""

    async def request(self, tracker: Tracker, event: ev.Event) -> list[ev.Event]: ...

    async def shopper_message(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event] | None: ...


@dataclass
class _Turn:
    tracker: Tracker
    decision: Decision
    hits: list[dict[str, Any]]
    language: str
    new: list[ev.Event] = field(default_factory=list)
    handled: bool = False  # an active form took the message: no fallback needed
    chosen: str | None = None  # the FAQ entry a "do you mean …?" button chose
    rejected_faq_id: str | None = None  # the answer the shopper just said was not what they asked
    traditional: bool = False  # the shopper writes traditional characters: the bot's Chinese replies are so written

    def add(self, *events: ev.Event) -> None:
        for event in events:
            if self.traditional and event.get("event") == "bot":
                event = bot_message_in_traditional(event)
            self.tracker.apply(event)
            self.new.append(event)


class DialogueEngine:
    def __init__(self, domain: Domain, rules: RulePolicy, memo: MemoizationPolicy, settings: KefuSettings,
                 thresholds: Thresholds, actions: ActionRunner, handoff: HandoffPort | None = None,
                 faq_entries: Mapping[str, FAQEntry] | None = None, learned: LearnedPolicy | None = None) -> None:
        self.domain = domain
        self.faq_entries = faq_entries or {}
        self.policies = PolicyEnsemble(domain, rules, memo, learned)
        self.settings = settings
        self.actions = actions
        self.handoff = handoff
        self.escalation = EscalationPolicy(settings, thresholds, domain.intents)
        self.human_intent = self.escalation.human_intent

    # -- entry point ------------------------------------------------------------------------------------------

    async def respond(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event]:
        parse = user_event.setdefault("parse_data", {})
        hits = parse.get("faq") or []
        text = user_event.get("text") or ""
        decision = self.escalation.decide(text, parse, hits)
        chosen = clarify.chosen_entry(parse)
        rejected = clarify.last_answer(tracker.applied_events()) if clarify.is_rejection(text) else None
        if rejected is not None and not decision.hand_over:
            # "that's not what I asked": a miss; offer the question's other likely entries (or a person)
            decision.faq_hit, decision.faq_answers = None, []
            decision.intent, decision.faq_reason = NLU_FALLBACK, REJECTED_ANSWER
            decision.clarify = self.escalation.to_offer([h for h in rejected[1] if h["id"] != rejected[0]],
                                                        at_least=0.0)
        parse["intent"] = {"name": decision.intent, "confidence": decision.confidence}
        language = language_of_message(user_event.get("text") or "", parse.get("language"),
                                       tracker.slots.get("language"), self.settings.default_language,
                                       parse.get("entities") or [])
        parse["language"] = language
        turn = _Turn(tracker, decision, hits, language, chosen=chosen,
                     rejected_faq_id=rejected[0] if rejected else None,
                     traditional=shopper_writes_traditional(tracker.applied_events(), language, user_event))
        turn.add(user_event)
        if "language" in self.domain.slots and tracker.slots.get("language") != language:
            turn.add(ev.slot("language", language))
        slot_events = forms.extract_slots(self.domain, tracker, parse, user_event.get("text") or "")
        if slot_events:
            turn.add(ev.action("action_extract_slots"), *slot_events)

        if tracker.active_loop in self.domain.forms:
            if decision.hand_over:
                turn.add(ev.active_loop(None), ev.slot(forms.REQUESTED_SLOT, None))
            else:
                await self._continue_form(turn)
        await self._run_policies(turn)
        return turn.new

    # -- policies ---------------------------------------------------------------------------------------------

    def _predict(self, turn: _Turn, first: bool) -> Prediction | None:
        """The policies' choice; stories are not asked about a message the classifier is unsure of."""
        return self.policies.predict(turn.tracker.applied_events(),
                                     use_stories=turn.decision.nlu_confident or not first)

    async def _run_policies(self, turn: _Turn) -> None:
        for step in range(MAX_ACTIONS_PER_TURN):
            if turn.tracker.human_holds:
                break
            prediction = self._choose(turn, first=step == 0)
            if prediction.action == LISTEN:
                turn.add(ev.action(LISTEN, prediction.policy, prediction.confidence))
                return
            await self._run_action(turn, prediction)
        turn.add(ev.action(LISTEN))

    def _choose(self, turn: _Turn, first: bool) -> Prediction:
        """The next action: the policies', else kefu's own answer to a message nothing covers."""
        prediction = self._predict(turn, first)
        if prediction is None and not first and turn.tracker.active_loop in self.domain.forms:
            # kefu answered an interruption by itself (FAQ, fallback): back to the form, as after a rule
            prediction = Prediction(turn.tracker.active_loop, "RulePolicy", 1.0)
        if prediction is None:
            action = self._unhandled(turn) if first and not turn.handled else LISTEN
            policy = "FAQPolicy" if action.startswith("utter_") else "FallbackPolicy"
            prediction = Prediction(action, policy, 1.0)
        return prediction

    def next_action(self, tracker: Tracker, first: bool) -> Prediction:
        """What the bot would do next at this point of a conversation, without doing it (`kefu test` replays
        a story's own events and compares this with each of its actions)."""
        if tracker.human_holds:
            return Prediction(LISTEN, "EscalationPolicy", 1.0)  # a person has the conversation
        user = next((e for e in reversed(tracker.events) if e.get("event") == "user"), ev.user(""))
        parse = user.get("parse_data") or {}
        hits = parse.get("faq") or []
        decision = self.escalation.decide(user.get("text") or "", parse, hits)
        turn = _Turn(tracker, decision, hits, parse.get("language") or self.settings.default_language)
        return self._choose(turn, first)

    def _unhandled(self, turn: _Turn) -> str:
        """No rule or story applies: answer from the FAQ, ask to rephrase, or hand over."""
        if turn.decision.hand_over:
            return HANDOFF_ACTION
        if turn.chosen is not None:
            return FAQ_ACTION
        if turn.decision.faq_hit is not None:
            return f"utter_{faq_base(turn.decision.faq_hit)}"
        return clarify.CLARIFY_ACTION if turn.decision.clarify else FALLBACK_ACTION

    # -- actions ----------------------------------------------------------------------------------------------

    async def _run_action(self, turn: _Turn, prediction: Prediction) -> None:
        name = prediction.action
        if name == HANDOFF_ACTION:
            dialogue = turn.decision.classifier_intent in [*self.settings.human_request_intents, "affirm"]
            await self._handoff(turn, turn.decision.reason(requested_by_dialogue=dialogue))
        elif name in (FALLBACK_ACTION, clarify.CLARIFY_ACTION):
            await self._fallback(turn, prediction)
        elif name in self.domain.forms:
            await self._run_form(turn, name, prediction)
        elif name == "action_restart":
            turn.add(ev.action(name, prediction.policy), ev.restarted())
        elif name == "action_deactivate_loop":
            turn.add(ev.action(name, prediction.policy), ev.active_loop(None))
        elif name.startswith("utter_") and self._retrieval_base(name) is not None:
            self._answer_faq(turn, prediction, self._retrieval_base(name))
        elif name.startswith("utter_"):
            turn.add(ev.action(name, prediction.policy, prediction.confidence))
            self._utter(turn, name)
        elif name in self.domain.actions or self.actions.knows(name):
            turn.add(ev.action(name, prediction.policy, prediction.confidence))
            await self._custom(turn, name)
        else:
            log.warning("predicted unknown action %s; listening", name)
            turn.add(ev.action(name, prediction.policy))

    def _utter(self, turn: _Turn, name: str, extra: dict[str, Any] | None = None) -> bool:
        message = render(self.domain, name, turn.tracker.slots, turn.tracker.latest_input_channel, extra)
        if message is None:
            text = default_text(name, turn.language)
            if text is None:
                log.warning("no response %s in the domain", name)
                return False
            message = {"text": text, "data": {}}
        turn.add(ev.bot(message["text"], message["data"], utter_action=name))
        return True

    def _retrieval_base(self, action: str) -> str | None:
        """`utter_faq` (our FAQ) or `utter_<retrieval intent>` → the FAQ subset it answers from."""
        base = action.removeprefix("utter_")
        if "/" in base or action in self.domain.responses:
            return None
        return base if base == "faq" or base in self.domain.intents else None

    def _answer_faq(self, turn: _Turn, prediction: Prediction, base: str = "faq") -> None:
        hits = [h for h in turn.hits if ("/" not in h["id"] and base == "faq") or h["id"].startswith(base + "/")]
        turn.add(ev.action(FAQ_ACTION if base == "faq" else f"utter_{base}", prediction.policy, prediction.confidence))
        entry = self.faq_entries.get(turn.chosen or "") if base == "faq" else None
        if entry is not None:  # the shopper chose it from "do you mean …?"
            turn.add(ev.bot(entry.answer(turn.language), {"faq_id": entry.id, "chosen": True}, f"utter_faq/{entry.id}"))
            return
        if base == "faq" and turn.decision.faq_answers:  # one answer per question the message asks
            hits = turn.decision.faq_answers
        elif base == "faq" and (not hits or hits[0]["score"] < self.escalation.faq_threshold(turn.decision.says_faq)):
            # our FAQ answers only when confident; a Rasa retrieval intent answers like Rasa's ResponseSelector
            turn.add(ev.bot(default_text("utter_default", turn.language), {}, "utter_default"))
            return
        elif not hits:
            turn.add(ev.bot(default_text("utter_default", turn.language), {}, "utter_default"))
            return
        else:
            hits = hits[:1]
        for hit in hits:
            turn.add(ev.bot(hit["answer"], {"faq_id": hit["id"], "score": hit["score"]}, f"utter_{base}/{hit['id']}"))

    def _consecutive_fallbacks(self, tracker: Tracker) -> int:
        """Fallbacks in the turns before this one, counted back to the last turn the bot understood."""
        count, turn_had_fallback = 0, False
        seen_user = False
        for event in reversed(tracker.applied_events()):
            kind = event.get("event")
            if kind == "user":
                if seen_user:
                    if not turn_had_fallback:
                        break
                    count += 1
                seen_user, turn_had_fallback = True, False
            elif kind == "action" and event.get("name") in (FALLBACK_ACTION, clarify.CLARIFY_ACTION):
                turn_had_fallback = True
        if seen_user and turn_had_fallback:
            count += 1
        return count

    async def _fallback(self, turn: _Turn, prediction: Prediction) -> None:
        if self.escalation.hands_over_after(self._consecutive_fallbacks(turn.tracker)):
            await self._handoff(turn, REPEATED_FALLBACK)
            return
        if _no_asking_back(turn.tracker):
            # a channel where a question back costs the shopper hours (e-mail): a person answers instead
            await self._handoff(turn, turn.decision.nlu_reason or turn.decision.faq_reason or LOW_FAQ_SCORE)
            return
        offered = turn.decision.clarify
        name = clarify.CLARIFY_ACTION if offered else FALLBACK_ACTION
        turn.add(ev.action(name, prediction.policy, prediction.confidence))
        response = "utter_did_you_mean" if offered else "utter_default"
        message = render(self.domain, response, turn.tracker.slots, turn.tracker.latest_input_channel)
        text = message["text"] if message else default_text(response, turn.language)
        buttons = clarify.offer(offered, lambda hit: self._title(hit, turn.language))
        buttons.append({"title": default_text("utter_talk_to_person", turn.language), "payload": f"/{self.human_intent}"
                        if self.human_intent else default_text("utter_talk_to_person", turn.language)})
        data = {**(message or {}).get("data", {}), "buttons": buttons,
                "reason": turn.decision.nlu_reason or turn.decision.faq_reason or "no_policy"}
        if offered:
            data["clarify"] = [hit["id"] for hit in offered]
        if turn.rejected_faq_id:
            data["rejected_faq_id"] = turn.rejected_faq_id
        turn.add(ev.bot(text, data, response))

    def _title(self, hit: dict[str, Any], language: str) -> str:
        """How an entry is named on a button: its display title in the conversation's language."""
        entry = self.faq_entries.get(hit["id"])
        return entry.title(language) if entry else hit.get("question") or hit["id"]

    async def _handoff(self, turn: _Turn, reason: str) -> None:
        guesses = turn.decision.candidates
        if reason == EXPLICIT_REQUEST:
            # "转人工" itself says nothing: show the agent what the bot made of the shopper's last question
            events = turn.tracker.events
            earlier = (events[i] for i in range(len(events) - 2, -1, -1) if events[i].get("event") == "user")
            for event in itertools.islice(earlier, 3):  # back from the latest, not through the whole conversation
                parse = event.get("parse_data") or {}
                if (parse.get("intent") or {}).get("name") not in self.settings.human_request_intents:
                    guesses = candidates(parse, parse.get("faq") or [])
                    break
        if turn.tracker.active_loop:
            turn.add(ev.active_loop(None))
        turn.add(ev.action(HANDOFF_ACTION, "EscalationPolicy"))
        requested = ev.handoff_requested(reason, guesses, turn.language)
        turn.add(requested)
        follow: list[ev.Event] = []
        if self.handoff is not None:
            try:
                follow = await self.handoff.request(turn.tracker, requested)
            except Exception:  # the queue being down must not lose the shopper's message
                log.exception("handoff queue failed for %s", turn.tracker.sender_id)
                # nobody will come for a request the queue never took: end it now and say so, rather than leave
                # the shopper waiting in "requested" for good
                turn.add({"event": ev.HANDOFF_CANCELLED, "timestamp": time.time(), "by": "system"})
                self._utter(turn, "handoff_lost")
                return
        # "connecting you…" only when someone will come; closed / nobody on duty is said by the event itself
        if not any(e.get("event") == ev.HANDOFF_UNAVAILABLE or e.get("nobody_online") for e in follow):
            self._utter(turn, "utter_handoff")
        turn.add(*follow)

    async def _custom(self, turn: _Turn, name: str, view: Tracker | None = None) -> None:
        result = await self._call(turn, name, view)
        if result is not None:
            self._apply(turn, result)

    async def _call(self, turn: _Turn, name: str, view: Tracker | None = None) -> ActionResult | None:
        """Run a custom action; None (after telling the shopper something went wrong) when it failed."""
        try:
            return await self.actions.run(name, view or turn.tracker, self.domain)
        except ActionError as exc:
            log.error("%s", exc)
            self._utter(turn, "utter_default")
            return None

    def _apply(self, turn: _Turn, result: ActionResult) -> None:
        """What a custom action said and did, as events."""
        for response in result.responses:
            template = response.get("response") or response.get("template")
            if template:
                self._utter(turn, template, {k: v for k, v in response.items() if k not in ("response", "template")})
                continue
            data = {k: v for k, v in response.items() if v and k != "text"}
            turn.add(ev.bot(response.get("text"), data))
        for event in result.events:
            if event.get("event") == "followup":
                continue
            event.setdefault("timestamp", ev.user("")["timestamp"])
            turn.add(event)

    # -- forms ------------------------------------------------------------------------------------------------

    async def _run_form(self, turn: _Turn, name: str, prediction: Prediction) -> bool:
        """Rasa's FormAction: activate, validate what the user just gave, ask for the next slot or finish.
        Returns False when the form rejected its execution (nothing it asked for came), which hands the turn
        back to the policies."""
        tracker = turn.tracker
        form = self.domain.forms[name]
        if tracker.active_loop != name:
            turn.add(ev.action(name, prediction.policy, prediction.confidence), ev.active_loop(name))
            prefilled = forms.prefilled_slots(form, tracker)
            result = await self._validate(turn, form, prefilled) if prefilled else None
        elif loop_status(tracker.applied_events())[1] == LISTEN:  # the user just spoke: validate what came
            candidates = forms.slot_candidates(form, tracker)
            result = await self._validate(turn, form, candidates)
            if forms.rejects(form, tracker, candidates, result):
                turn.add(ev.action_execution_rejected(name))
                return False
            turn.add(ev.action(name, prediction.policy, prediction.confidence))
        else:  # back after an interruption: no new input to validate, ask again
            result = None
            turn.add(ev.action(name, prediction.policy, prediction.confidence))
        if result is not None:
            self._apply(turn, result)
        await self._ask_or_finish(turn, form, result)
        return True

    async def _validate(self, turn: _Turn, form: Form, candidates: dict[str, object]) -> ActionResult | None:
        """Run `validate_<form>` (when the domain lists it, as Rasa) on the slot candidates, which Rasa puts at
        the end of the tracker; without it the candidates stand as they are."""
        validator = f"validate_{form.name}"
        if validator not in self.domain.actions:
            return None
        view = turn.tracker.copy()
        for name, value in candidates.items():
            view.apply(ev.slot(name, value))
        return await self._call(turn, validator, view) or ActionResult()

    async def _continue_form(self, turn: _Turn) -> None:
        name = turn.tracker.active_loop
        turn.handled = await self._run_form(turn, name, Prediction(name, "RulePolicy", 1.0))

    async def _ask_or_finish(self, turn: _Turn, form: Form, result: ActionResult | None) -> None:
        requested = forms.requested_by_validation(result)
        if requested is forms.NOT_SET:
            requested = forms.next_slot(form, turn.tracker)
            turn.add(ev.slot(forms.REQUESTED_SLOT, requested))
        if requested is None or turn.tracker.active_loop != form.name:
            if turn.tracker.active_loop == form.name:
                turn.add(ev.active_loop(None))
            return
        ask = forms.ask_action(form, requested, self.domain)
        if ask and ask.startswith("action_"):
            await self._custom(turn, ask)
        elif ask:
            self._utter(turn, ask)


def _no_asking_back(tracker: Tracker) -> bool:
    """The shopper's channel said (metadata `asks_back: false`) that "do you mean …?" is no use there."""
    latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), None)
    return latest is not None and (latest.get("metadata") or {}).get("asks_back") is False
