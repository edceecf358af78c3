"""Which FAQ entry a question is about, learnt from the FAQ's own phrasings (Rasa's ResponseSelector, in spirit).

BM25 and the dense cosine compare a question with one stored phrasing at a time, so they cannot learn which
words tell two entries apart: "工作时间" (opening hours) shares more characters with refund_time's "3–5 个工作日"
than with anything under hours_contact. A classifier trained on every phrasing of every entry learns exactly
that: the shop-tuned part of the retrieval, where both languages meet (a multilingual embedding is one of
its features).

The classifier is kefu's intent classifier (logistic regression with a cross-validated temperature) over the
NLU's features (the sentence embedding — weighted by how much of the text an English-only encoder can read —
and character and word n-gram TF-IDF), trained on the question phrasings, the answers and tags at a lower
weight, and the off-topic background questions as one more class — so an out-of-scope question spreads its
probability instead of handing all of it to the nearest entry. Its out-of-fold probabilities (every phrasing
scored by a fold model that did not see it) are what the score calibration is fitted on: a question the selector
never saw is judged by how the selector does on questions it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import softmax

from bot.language import detect_language
from bot.nlu.classifier import IntentClassifier
from bot.nlu.featurizers import FeatureSettings, Featurizer
from bot.nlu.tokenizer import tokenize

BACKGROUND = "\x00background"  # the off-topic class: no entry id can be this
# Longer n-grams learn the phrasings by heart (dev split); 25,000 n-grams per block bound the weights (the demo
# shop's 83 entries use 23,000 + 15,000).
SETTINGS = FeatureSettings(char_ngrams=(1, 3), max_features=25_000)
# Regularised less than the intent classifier: with 40 phrasings an entry, held-out phrasings ranked first 87.4 →
# 88.0 % (zh) and 86.7 → 88.0 % (en) from C 10 to 100 (3-fold cross-validation over the demo shop's phrasings;
# 300 adds 0.1–0.3 points for twice the training time).
C = 100.0
MAX_ENTRIES = 500  # beyond this the weights (entries × n-grams) cost more memory than the selector is worth


def _tokens(texts: list[str]) -> list[list[str]]:
    return [tokenize(t, detect_language(t, "zh")) for t in texts]


@dataclass
class EntrySelector:
    featurizer: Featurizer
    classifier: IntentClassifier
    columns: np.ndarray  # per entry: its column in the classifier's probabilities (-1: published since training)

    @property
    def knows(self) -> np.ndarray:
        """Per entry: whether the selector was trained on it."""
        return self.columns >= 0

    @classmethod
    def fit(
        cls,
        entry_ids: list[str],
        texts: list[str],
        entries: np.ndarray,
        weights: np.ndarray,
        is_question: np.ndarray,
        vectors: np.ndarray,
        background: list[str],
        background_vectors: np.ndarray,
        embedding_reads_han: bool = False,
    ) -> tuple[EntrySelector, np.ndarray | None]:
        """Train on `texts` (of entry `entries[i]`, weighing `weights[i]`) and the background questions; the
        temperature is fitted on the question phrasings and the background (not on answers and tags).

        Returns the selector and the held-out probabilities, (len(texts) + len(background), n_entries), rows
        in that order — None when there is too little data to cross-validate.
        """
        all_texts = texts + background
        labels = [entry_ids[e] for e in entries] + [BACKGROUND] * len(background)
        all_vectors = np.concatenate([vectors, background_vectors]) if background else vectors
        featurizer = Featurizer(replace(SETTINGS, embedding_reads_han=embedding_reads_han))
        tokens = _tokens(all_texts)
        featurizer.fit(all_texts, tokens)
        features = featurizer.transform(all_texts, tokens, all_vectors)
        classifier = IntentClassifier(regularisation=C)
        weight = np.concatenate([weights, np.ones(len(background))]).astype(np.float64)
        calibrate_on = np.concatenate([is_question, np.ones(len(background), dtype=bool)])
        classifier.fit(features, labels, weight, calibrate_on)
        self = cls(featurizer, classifier, _columns(classifier, entry_ids))
        held_out = classifier.held_out_logits
        if held_out is None:
            return self, None
        with np.errstate(invalid="ignore"):
            proba = softmax(held_out / classifier.temperature, axis=1)
        return self, np.nan_to_num(proba[:, self.columns], nan=0.0).astype(np.float32)

    def probabilities(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """(len(texts), n_entries): how likely each text is about each entry (the rest is off-topic); 0 for an
        entry the selector was not trained on (see `for_entries`)."""
        features = self.featurizer.transform(texts, _tokens(texts), np.asarray(vectors, dtype=np.float32))
        proba = self.classifier.predict_proba(features)[:, np.maximum(self.columns, 0)].astype(np.float32)
        proba[:, self.columns < 0] = 0.0
        return proba

    def for_entries(self, entry_ids: list[str]) -> EntrySelector:
        """The same classifier for another list of entries (a live edit, bot/knowledge/): the entries it was
        trained on keep their classes, new ones get no selector evidence until the next `kefu train`."""
        position = {name: i for i, name in enumerate(self.classifier.classes)}
        columns = np.array([position.get(e, -1) for e in entry_ids], dtype=np.int64)
        return EntrySelector(self.featurizer, self.classifier, columns)

    # persistence: plain JSON and arrays, no pickle
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        feature_meta, feature_arrays = self.featurizer.state()
        classifier_meta, classifier_arrays = self.classifier.state()
        arrays = {f"featurizer_{k}": v for k, v in feature_arrays.items()}
        arrays.update({f"classifier_{k}": v for k, v in classifier_arrays.items()})
        return {"featurizer": feature_meta, "classifier": classifier_meta}, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], entry_ids: list[str]) -> EntrySelector:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

        featurizer = Featurizer.from_state(meta["featurizer"], part("featurizer_"))
        classifier = IntentClassifier.from_state(meta["classifier"], part("classifier_"))
        return cls(featurizer, classifier, _columns(classifier, entry_ids))


def _columns(classifier: IntentClassifier, entry_ids: list[str]) -> np.ndarray:
    position = {name: i for i, name in enumerate(classifier.classes)}
    missing = [e for e in entry_ids if e not in position]
    if missing:
        raise ValueError(f"the FAQ selector does not know entries {', '.join(missing[:5])}")
    return np.array([position[e] for e in entry_ids], dtype=np.int64)
