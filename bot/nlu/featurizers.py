"""Message features: a sentence embedding next to character and word n-gram TF-IDF, in one unit-length row.

all-MiniLM-L6-v2 is an English model: it maps most Chinese characters to [UNK], so two unrelated Chinese
sentences can look identical to it. Each message's embedding is therefore weighted by the share of it the
model can read (1 − Han share, see `language.han_share`), and Chinese is carried by the character n-grams
(char_wb over the lower-cased text) and the jieba word n-grams. Rows are normalised to unit length, so the dot
product of two rows is a weighted mean of the three cosine similarities, which the novelty check reuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.nlu.language import han_share

WORD_JOIN = "\u2581"  # joins the tokens of a word bigram (cannot occur inside a token)


@dataclass
class FeatureSettings:
    """Block weights and n-gram ranges; the weights were chosen on Bitext train/dev (see benchmarks/)."""

    embedding_weight: float = 1.0
    char_weight: float = 1.0
    word_weight: float = 1.0
    char_ngrams: tuple[int, int] = (1, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    max_features: int = 200_000

    def as_dict(self) -> dict[str, Any]:
        return {
            "embedding_weight": self.embedding_weight,
            "char_weight": self.char_weight,
            "word_weight": self.word_weight,
            "char_ngrams": list(self.char_ngrams),
            "word_ngrams": list(self.word_ngrams),
            "max_features": self.max_features,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSettings:
        return cls(
            embedding_weight=float(raw["embedding_weight"]),
            char_weight=float(raw["char_weight"]),
            word_weight=float(raw["word_weight"]),
            char_ngrams=(int(raw["char_ngrams"][0]), int(raw["char_ngrams"][1])),
            word_ngrams=(int(raw["word_ngrams"][0]), int(raw["word_ngrams"][1])),
            max_features=int(raw["max_features"]),
        )


@dataclass
class Features:
    """Rows of `dense` (weighted embeddings) next to rows of `sparse` (weighted TF-IDF); unit length together."""

    dense: np.ndarray
    sparse: sp.csr_matrix

    def stacked(self) -> sp.csr_matrix:
        """One matrix for the linear classifier."""
        return sp.hstack([sp.csr_matrix(self.dense), self.sparse], format="csr")

    def similarity(self, other: Features) -> np.ndarray:
        """Cosine similarities, shape (len(self), len(other))."""
        dense = self.dense @ other.dense.T
        sparse = (self.sparse @ other.sparse.T).toarray()
        return dense + sparse

    def rows(self, index: np.ndarray) -> Features:
        return Features(self.dense[index], self.sparse[index])

    def __len__(self) -> int:
        return self.dense.shape[0]


def word_ngrams(tokens: list[str], ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """Lower-cased token n-grams; punctuation-only tokens dropped."""
    words = [t.lower() for t in tokens if any(ch.isalnum() for ch in t)]
    low, high = ngram_range
    out: list[str] = []
    for n in range(low, high + 1):
        out.extend(WORD_JOIN.join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


@dataclass
class Featurizer:
    settings: FeatureSettings = field(default_factory=FeatureSettings)
    char_vectorizer: TfidfVectorizer | None = None
    word_vectorizer: TfidfVectorizer | None = None

    def _new_vectorizers(self, vocabularies: tuple[Any, Any] | None = None) -> None:
        s = self.settings
        char_vocab, word_vocab = vocabularies or (None, None)
        self.char_vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=s.char_ngrams,
            lowercase=True,
            sublinear_tf=True,
            max_features=s.max_features,
            dtype=np.float32,
            vocabulary=char_vocab,
        )
        self.word_vectorizer = TfidfVectorizer(
            analyzer=self._word_analyzer,
            lowercase=False,
            sublinear_tf=True,
            max_features=s.max_features,
            dtype=np.float32,
            vocabulary=word_vocab,
        )

    def _word_analyzer(self, tokens: list[str]) -> list[str]:
        return word_ngrams(tokens, self.settings.word_ngrams)

    def fit(self, texts: list[str], tokens: list[list[str]]) -> None:
        self._new_vectorizers()
        assert self.char_vectorizer is not None and self.word_vectorizer is not None
        self.char_vectorizer.fit(texts)
        self.word_vectorizer.fit(tokens)

    def transform(self, texts: list[str], tokens: list[list[str]], embeddings: np.ndarray) -> Features:
        if self.char_vectorizer is None or self.word_vectorizer is None:
            raise RuntimeError("featurizer used before fit/load")
        s = self.settings
        readable = np.array([1.0 - han_share(t) for t in texts], dtype=np.float32)
        dense = embeddings.astype(np.float32) * (s.embedding_weight * readable)[:, None]
        sparse = sp.hstack(
            [self.char_vectorizer.transform(texts) * s.char_weight, self.word_vectorizer.transform(tokens) * s.word_weight],
            format="csr",
            dtype=np.float32,
        )
        norms = np.sqrt((dense**2).sum(axis=1) + np.asarray(sparse.multiply(sparse).sum(axis=1)).ravel())
        scale = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        return Features(dense * scale[:, None], sp.csr_matrix(sparse.multiply(scale[:, None])))

    # persistence: vocabularies and idf weights as plain arrays (no pickle)
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.char_vectorizer is not None and self.word_vectorizer is not None
        meta = {
            "settings": self.settings.as_dict(),
            "char_vocabulary": _vocab_list(self.char_vectorizer),
            "word_vocabulary": _vocab_list(self.word_vectorizer),
        }
        arrays = {"char_idf": self.char_vectorizer.idf_, "word_idf": self.word_vectorizer.idf_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Featurizer:
        featurizer = cls(FeatureSettings.from_dict(meta["settings"]))
        char_vocab = {term: i for i, term in enumerate(meta["char_vocabulary"])}
        word_vocab = {term: i for i, term in enumerate(meta["word_vocabulary"])}
        if len(char_vocab) != len(arrays["char_idf"]) or len(word_vocab) != len(arrays["word_idf"]):
            raise ValueError("vocabulary and idf sizes differ")
        featurizer._new_vectorizers((char_vocab, word_vocab))
        assert featurizer.char_vectorizer is not None and featurizer.word_vectorizer is not None
        featurizer.char_vectorizer.idf_ = arrays["char_idf"]
        featurizer.word_vectorizer.idf_ = arrays["word_idf"]
        return featurizer


def _vocab_list(vectorizer: TfidfVectorizer) -> list[str]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[index] = term
    return terms
