"""How far a message is from everything the bot was trained on, as a factor on the intent confidence.

A softmax classifier spreads all of its probability over the intents it knows, so "what's the weather
tomorrow" still gets some shop intent with high confidence. The calibrated probability answers "which intent,
if it is one of ours"; this module answers "is it one of ours at all".

Score: the cosine similarity of a message to its nearest training example (in the joint feature space, see
featurizers.py). Reference: the same score for training examples against the *other* training examples
(leave-one-out, identical texts excluded), which is how similar genuine in-scope messages are to the data;
`floor` is its ALPHA-quantile. The factor is min(1, score / floor) ** POWER: a message at least as close to the
data as all but the least typical ALPHA of the training examples keeps its confidence; one half as close keeps
a quarter of it. Typos and unusual wording cost a little; a message on another subject costs most of it.

This complements the built-in off-topic class (background.py), which covers common subjects by name; the
novelty factor covers the rest, and does most when the training data is large (on a small bot the reference is
low, since few examples resemble each other, and the factor stays near 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.nlu.featurizers import Features

ALPHA = 0.01  # quantile of the reference taken as the floor; chosen on Bitext train/dev
POWER = 2.0
REFERENCE_ROWS = 2000  # leave-one-out scores of at most this many examples (against all of them)
CHUNK = 512


@dataclass
class NoveltyScorer:
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # sorted scores
    alpha: float = ALPHA
    _floor: float | None = field(default=None, repr=False, compare=False)

    def fit(self, train: Features, texts: list[str]) -> None:
        n = len(train)
        if n < 2:
            self.reference = np.zeros(0, dtype=np.float32)
            self._floor = None
            return
        rng = np.random.default_rng(0)
        rows = np.arange(n) if n <= REFERENCE_ROWS else np.sort(rng.choice(n, REFERENCE_ROWS, replace=False))
        keys = [t.strip().lower() for t in texts]
        same_text: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            same_text.setdefault(key, []).append(i)
        scores: list[float] = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            sims = train.rows(chunk).similarity(train)
            for r, i in enumerate(chunk):
                sims[r, same_text[keys[i]]] = -np.inf  # itself and exact duplicates are not neighbours
            best = sims.max(axis=1)
            scores.extend(float(s) for s in best if np.isfinite(s))
        self.reference = np.sort(np.asarray(scores, dtype=np.float32))
        self._floor = None

    def floor(self) -> float:
        return float(np.quantile(self.reference, self.alpha)) if len(self.reference) else 0.0

    def factor(self, similarity: np.ndarray) -> np.ndarray:
        """Multiplier in [0, 1] for the intent confidences of messages with these nearest-neighbour scores."""
        floor = self.enough()
        if floor <= 0:
            return np.ones_like(similarity, dtype=np.float64)
        return np.clip(similarity / floor, 0.0, 1.0) ** POWER

    def enough(self) -> float:
        """The nearest-neighbour score from which a message keeps all its confidence (the floor)."""
        floor = self._floor
        if floor is None:  # computed on first use; a race only computes the same number twice
            floor = self._floor = self.floor()
        return floor

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"alpha": self.alpha}, {"novelty_reference": self.reference}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> NoveltyScorer:
        return cls(np.asarray(arrays["novelty_reference"], dtype=np.float32), float(meta["alpha"]))
