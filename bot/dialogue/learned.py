"""A learned dialogue policy for conversations no rule or memorised story covers (kefu's stand-in for TED).

It is a logistic regression over the featurised last `max_history` states — intent, entities, previous
action, active loop and slot features, each tied to its distance from now — trained on every action of the
training stories. Unlike memoisation it generalises: a story learned after a greeting also applies when the
conversation started another way, and an unseen slot combination still gets the action most like it. It
answers only when it is at least `threshold` sure (Rasa's `core_fallback_threshold`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from bot.dialogue.policies import Prediction, expand_stories, story_states
from bot.dialogue.states import State
from bot.formats.domain import Domain
from bot.formats.stories import Story


def state_features(sequence: list[State], max_history: int) -> dict[str, float]:
    """One-hot features of the last `max_history` states, each named with its distance from now."""
    features: dict[str, float] = {}
    window = sequence[-max_history:]
    if len(window) < max_history:
        features[f"{len(window)}:start"] = 1.0  # the conversation began within the window
    for distance, state in enumerate(reversed(window)):
        prefix = f"{distance}:"
        if state.get("intent"):
            features[prefix + "intent=" + state["intent"]] = 1.0
        for entity in state.get("entities") or ():
            features[prefix + "entity=" + entity] = 1.0
        features[prefix + "prev=" + str(state.get("prev_action"))] = 1.0
        if state.get("active_loop"):
            features[prefix + "loop=" + state["active_loop"]] = 1.0
        for slot, value in (state.get("slots") or {}).items():
            if value is not None:
                features[f"{prefix}slot={slot}={value}"] = 1.0
    return features


class LearnedPolicy:
    name = "LearnedPolicy"

    def __init__(self, max_history: int = 5, threshold: float = 0.3, vocabulary: dict[str, int] | None = None,
                 classes: list[str] | None = None, coef: list[list[float]] | None = None,
                 intercept: list[float] | None = None) -> None:
        self.max_history = max_history
        self.threshold = threshold
        self.vocabulary = vocabulary or {}
        self.classes = classes or []
        self.coef = coef or []
        self.intercept = intercept or []

    def train(self, stories: list[Story], domain: Domain) -> None:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression

        # the same state window before the same action recurs across stories: fit each once, weighted by how
        # often it occurs (the same optimum as fitting every copy, several times faster on large bots)
        counts: Counter[tuple[tuple[str, ...], str]] = Counter()
        for steps in expand_stories(stories):
            builder = story_states(steps, domain)
            for i, action in enumerate(builder.actions):
                counts[tuple(sorted(state_features(builder.states[: i + 1], self.max_history))), action] += 1
        self.classes = sorted({action for _, action in counts})
        if len(self.classes) < 2:  # nothing to choose between
            return
        vectorizer = DictVectorizer()
        matrix = vectorizer.fit_transform([dict.fromkeys(names, 1.0) for names, _ in counts])
        model = LogisticRegression(C=20.0, max_iter=3000)
        model.fit(matrix, [action for _, action in counts], sample_weight=list(counts.values()))
        self.vocabulary = {name: int(i) for name, i in vectorizer.vocabulary_.items()}
        self.classes = [str(c) for c in model.classes_]
        self.coef = model.coef_.tolist()
        self.intercept = model.intercept_.tolist()

    def probabilities(self, sequence: list[State]) -> dict[str, float]:
        if len(self.classes) == 1:
            return {self.classes[0]: 1.0}
        if not self.coef:
            return {}
        columns = [self.vocabulary[f] for f in state_features(sequence, self.max_history) if f in self.vocabulary]
        scores = [b + sum(row[c] for c in columns) for row, b in zip(self.coef, self.intercept, strict=True)]
        if len(self.classes) == 2:  # sklearn's binary model: one score for the second class
            p = 1.0 / (1.0 + math.exp(-scores[0]))
            return {self.classes[0]: 1.0 - p, self.classes[1]: p}
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}

    def predict(self, sequence: list[State]) -> Prediction | None:
        probabilities = self.probabilities(sequence)
        if not probabilities:
            return None
        action, confidence = max(probabilities.items(), key=lambda kv: kv[1])
        return Prediction(action, self.name, confidence) if confidence >= self.threshold else None

    def to_dict(self) -> dict[str, Any]:
        return {"max_history": self.max_history, "threshold": self.threshold, "vocabulary": self.vocabulary,
                "classes": self.classes, "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnedPolicy:
        return cls(data["max_history"], data["threshold"], data["vocabulary"], data["classes"], data["coef"],
                   data["intercept"])
