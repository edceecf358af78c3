"""One bot turn: from a parsed user message to the events that answer it.

Order of decisions (design.md): rules > active form > FAQ answer (if confident) > memorised stories >
fallback / escalation. Everything the bot does is returned as events; nothing else keeps state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.action_runner import ActionError, ActionRunner
from bot.config import KefuSettings, Thresholds
from bot.dialogue import clarify, forms
from bot.dialogue import events as ev
from bot.dialogue.defaults import default_text
from bot.dialogue.escalation import (
    EXPLICIT_REQUEST,
    NLU_FALLBACK,
    REJECTED_ANSWER,
    REPEATED_FALLBACK,
    Decision,
    EscalationPolicy,
    candidates,
    faq_base,
)
from bot.dialogue.policies import MemoizationPolicy, Prediction, RulePolicy
from bot.dialogue.responses import render
from bot.dialogue.states import LISTEN, tracker_states
from bot.dialogue.tracker import Tracker
from bot.formats.domain import Domain
from bot.formats.faq_data import FAQEntry
from bot.language import language_of_message

log = logging.getLogger(__name__)

MAX_ACTIONS_PER_TURN = 10
FAQ_ACTION = "utter_faq"
FALLBACK_ACTION = "action_default_fallback"
HANDOFF_ACTION = "action_handoff"


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
    rejected_form: str | None = None
    handled: bool = False  # an active form took the message: no fallback needed
    chosen: str | None = None  # the FAQ entry a "do you mean …?" button chose
    rejected_faq_id: str | None = None  # the answer the shopper just said was not what they asked

    def add(self, *events: ev.Event) -> None:
        for event in events:
            self.tracker.apply(event)
            self.new.append(event)


class DialogueEngine:
    def __init__(self, domain: Domain, rules: RulePolicy, memo: MemoizationPolicy, settings: KefuSettings,
                 thresholds: Thresholds, actions: ActionRunner, handoff: HandoffPort | None = None,
                 faq_entries: Mapping[str, FAQEntry] | None = None) -> None:
        self.domain = domain
        self.faq_entries = faq_entries or {}
        self.rules = rules
        self.memo = memo
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
                     rejected_faq_id=rejected[0] if rejected else None)
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
        states = tracker_states(turn.tracker.applied_events(), self.domain)
        sequence = [*states.states, states.current()]
        prediction = self.rules.predict(sequence, self.domain)
        if prediction is None and (turn.decision.nlu_confident or not first):
            prediction = self.memo.predict(sequence)
        if prediction and prediction.action == turn.rejected_form:
            return None
        return prediction

    async def _run_policies(self, turn: _Turn) -> None:
        for step in range(MAX_ACTIONS_PER_TURN):
            if turn.tracker.human_holds:
                break
            prediction = self._predict(turn, first=step == 0)
            if prediction is None:
                action = self._unhandled(turn) if step == 0 and not turn.handled else LISTEN
                policy = "FAQPolicy" if action.startswith("utter_") else "FallbackPolicy"
                prediction = Prediction(action, policy, 1.0)
            if prediction.action == LISTEN:
                if turn.rejected_form and turn.tracker.active_loop == turn.rejected_form:
                    await self._ask_again(turn)
                turn.add(ev.action(LISTEN, prediction.policy, prediction.confidence))
                return
            await self._run_action(turn, prediction)
        turn.add(ev.action(LISTEN))

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
            turn.add(ev.action(name, prediction.policy, prediction.confidence))
            await self._activate_form(turn, name)
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
            earlier = [e for e in turn.tracker.events[:-1] if e.get("event") == "user"]
            for event in reversed(earlier[-3:]):
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
        # "connecting you…" only when someone will come; closed / nobody on duty is said by the event itself
        if not any(e.get("event") == ev.HANDOFF_UNAVAILABLE or e.get("nobody_online") for e in follow):
            self._utter(turn, "utter_handoff")
        turn.add(*follow)

    async def _custom(self, turn: _Turn, name: str, view: Tracker | None = None) -> None:
        try:
            result = await self.actions.run(name, view or turn.tracker, self.domain)
        except ActionError as exc:
            log.error("%s", exc)
            self._utter(turn, "utter_default")
            return
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

    async def _validate(self, turn: _Turn, form: str) -> None:
        """Run `validate_<form>` on this turn's slot candidates, which Rasa puts at the end of the tracker."""
        validator = f"validate_{form}"
        if validator in self.domain.actions or self.actions.knows(validator):
            candidates = [e for e in turn.tracker.turns_since_listen() if e.get("event") == "slot"]
            view = Tracker.from_events(turn.tracker.sender_id, turn.tracker.events + candidates, self.domain)
            await self._custom(turn, validator, view)

    async def _activate_form(self, turn: _Turn, name: str) -> None:
        turn.add(ev.active_loop(name))
        if forms.slots_set_this_turn(turn.tracker) & set(self.domain.forms[name].required_slots):
            await self._validate(turn, name)
        await self._ask_or_finish(turn, name)

    async def _continue_form(self, turn: _Turn) -> None:
        name = turn.tracker.active_loop
        form = self.domain.forms[name]
        if not forms.slots_set_this_turn(turn.tracker) & set(form.required_slots):
            turn.rejected_form = name
            turn.add(ev.action_execution_rejected(name))
            return
        turn.add(ev.action(name, "RulePolicy"))
        turn.handled = True
        await self._validate(turn, name)
        await self._ask_or_finish(turn, name)

    async def _ask_or_finish(self, turn: _Turn, name: str) -> None:
        form = self.domain.forms[name]
        missing = forms.next_slot(form, turn.tracker)
        if missing is None:
            turn.add(ev.slot(forms.REQUESTED_SLOT, None), ev.active_loop(None))
            return
        turn.add(ev.slot(forms.REQUESTED_SLOT, missing))
        await self._ask(turn, form, missing)

    async def _ask(self, turn: _Turn, form, slot: str) -> None:
        custom = {n for n in (f"action_ask_{form.name}_{slot}", f"action_ask_{slot}") if self.actions.knows(n)}
        ask = forms.ask_action(form, slot, self.domain, custom)
        if ask in custom:
            await self._custom(turn, ask)
        elif ask:
            self._utter(turn, ask)

    async def _ask_again(self, turn: _Turn) -> None:
        """After an interruption inside a form, repeat the question so the shopper knows what is pending."""
        name = turn.tracker.active_loop
        requested = turn.tracker.slots.get(forms.REQUESTED_SLOT)
        if name and requested:
            turn.add(ev.action(name, "RulePolicy"))
            await self._ask(turn, self.domain.forms[name], requested)

