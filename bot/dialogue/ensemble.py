"""Which action comes next: the policies asked in Rasa 3's order, on a conversation's events.

Rasa's ensemble, as its RulePolicy and priorities decide it:

1. default actions for Rasa's default intents (`/restart` → `action_restart`, `/back`, `/session_start`);
2. an active form that was not rejected runs again after the user speaks, and is followed by listening;
3. rules (the most specific one that matches); a rule that does not mention the active form and would
   listen hands back to the form instead, so "chitchat inside a form" needs no rule of its own;
4. memorised stories; 5. the learned policy, when it is at least `core_fallback_threshold` sure.

`kefu test` and the running engine both call `PolicyEnsemble.predict`, so a test story measures the bot.
"""

from __future__ import annotations

from typing import Any

from bot.dialogue.learned import LearnedPolicy
from bot.dialogue.policies import MemoizationPolicy, Prediction, RulePolicy
from bot.dialogue.states import LISTEN, REJECTED, SKIPPED_ACTIONS, loop_status, tracker_states
from bot.formats.domain import Domain

DEFAULT_ACTIONS = {"restart": "action_restart", "back": "action_back", "session_start": "action_session_start"}


class PolicyEnsemble:
    def __init__(self, domain: Domain, rules: RulePolicy, memo: MemoizationPolicy,
                 learned: LearnedPolicy | None = None) -> None:
        self.domain = domain
        self.rules = rules
        self.memo = memo
        self.learned = learned

    def predict(self, events: list[dict[str, Any]], use_stories: bool = True) -> Prediction | None:
        """The next action after `events`, or None when no policy knows (the engine then decides between an
        FAQ answer, a fallback and a person). `use_stories=False` asks the rules and the form only."""
        loop, latest, rejected = loop_status(events)
        if latest == LISTEN:
            intent = _latest_intent(events)
            if intent in DEFAULT_ACTIONS:
                return Prediction(DEFAULT_ACTIONS[intent], "RulePolicy", 1.0)
        if loop and not rejected:
            return Prediction(LISTEN if latest == loop else loop, "RulePolicy", 1.0)
        builder = tracker_states(events, self.domain)
        sequence = [*builder.states, builder.current()]

        just_rejected = rejected and _latest_step(events) == REJECTED

        def allowed(prediction: Prediction | None) -> Prediction | None:
            """A form that has just refused the message is not run again on it (it would refuse again, up to
            the turn's action limit, and the shopper would get no answer): the other policies, or the engine's
            FAQ / fallback, answer instead. After another action (an interruption's answer) it may run again."""
            return None if prediction is not None and just_rejected and prediction.action == loop else prediction

        prediction = allowed(self.rules.predict(sequence, self.domain))
        if prediction is not None:
            if loop and prediction.action == LISTEN and prediction.general:
                return Prediction(loop, "RulePolicy", 1.0)  # back to the form after the interruption
            return prediction
        if not use_stories:
            return None
        prediction = allowed(self.memo.predict(sequence))
        if prediction is None and self.memo.augmented:
            prediction = allowed(self._recall_recent_past(events))
        if prediction is None and self.learned is not None:
            prediction = allowed(self.learned.predict(sequence))
        return prediction

    def _recall_recent_past(self, events: list[dict[str, Any]]) -> Prediction | None:
        """Rasa's AugmentedMemoizationPolicy: forget the history up to one action after another (slots
        included, as Rasa's truncated tracker does) until what is left is how some story began."""
        cuts = [i for i, e in enumerate(events) if e.get("event") == "action" and i > 0]
        for cut in cuts[-self.memo.max_history:]:  # a longer past cannot be how a remembered story began
            builder = tracker_states(events[cut:], self.domain)
            prediction = self.memo.recall_from_start([*builder.states, builder.current()])
            if prediction is not None:
                return prediction
        return None


def _latest_step(events: list[dict[str, Any]]) -> str | None:
    """The kind of the latest action-like event: an action's name, or a rejection."""
    for event in reversed(events):
        if event.get("event") == REJECTED:
            return REJECTED
        if event.get("event") == "action" and event.get("name") not in SKIPPED_ACTIONS:
            return event.get("name")
    return None


def _latest_intent(events: list[dict[str, Any]]) -> str | None:
    for event in reversed(events):
        if event.get("event") == "user":
            return ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return None
