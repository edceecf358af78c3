"""How far a message is from everything the bot was trained on, as a factor on the intent confidence.

A softmax classifier spreads all of its probability over the intents it knows, so "what's the weather
tomorrow" still gets some shop intent with high confidence. The calibrated probability answers "which intent,
if it is one of ours"; this module answers "is it one of ours at all".

Score: the cosine similarity of a message to its nearest training example (in the joint feature space, see
featurizers.py). Reference: the same score for training examples against the *other* training examples
(leave-one-out, identical texts excluded), which is how similar genuine in-scope messages are to the data.
The factor is min(1, p / ALPHA), where p is the share of reference scores at or below the message's score (a
conformal p-value, linearly interpolated, falling to 0 at similarity 0). In-scope messages get p ≥ ALPHA and a
factor of 1 except in the lowest ALPHA tail; messages less similar to the data than almost every training
example to its neighbours get their confidence scaled down towards 0, and the fallback threshold does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.nlu.featurizers import Features

ALPHA = 0.01  # share of in-scope messages allowed a reduced confidence; chosen on Bitext train/dev
REFERENCE_ROWS = 2000  # leave-one-out scores of at most this many examples (against all of them)
CHUNK = 512


@dataclass
class NoveltyScorer:
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # sorted scores
    alpha: float = ALPHA

    def fit(self, train: Features, texts: list[str]) -> None:
        n = len(train)
        if n < 2:
            self.reference = np.zeros(0, dtype=np.float32)
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

    def p_value(self, similarity: np.ndarray) -> np.ndarray:
        """Interpolated share of reference scores ≤ similarity (1.0 when there is no reference)."""
        ref = self.reference
        if len(ref) == 0:
            return np.ones_like(similarity, dtype=np.float64)
        xs = np.concatenate([[0.0], ref.astype(np.float64)])
        ys = np.concatenate([[0.0], np.arange(1, len(ref) + 1) / (len(ref) + 1)])
        xs, keep = np.unique(xs, return_index=True)  # np.interp needs increasing x; keep the first rank
        ys = ys[keep]
        return np.interp(similarity, xs, ys, left=0.0, right=1.0)

    def factor(self, similarity: np.ndarray) -> np.ndarray:
        """Multiplier in [0, 1] for the intent confidences of messages with these nearest-neighbour scores."""
        return np.minimum(1.0, self.p_value(similarity) / self.alpha)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"alpha": self.alpha}, {"novelty_reference": self.reference}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> NoveltyScorer:
        return cls(np.asarray(arrays["novelty_reference"], dtype=np.float32), float(meta["alpha"]))
