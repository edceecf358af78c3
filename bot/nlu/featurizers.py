"""Message features: a sentence embedding next to character and word n-gram TF-IDF, in one unit-length row.

The default encoder reads Chinese and English alike. An English-only one (all-MiniLM-L6-v2) maps most Chinese
characters to [UNK], so two unrelated Chinese sentences can look identical to it: with such an encoder
(`FeatureSettings.embedding_reads_han` false) each message's embedding is weighted by the share of it the model
can read (1 − Han share, see `language.han_share`), and Chinese is carried by the character n-grams (char_wb
over the lower-cased text) and the jieba word n-grams. Rows are normalised to unit length, so the dot
product of two rows is a weighted mean of the three cosine similarities, which the novelty check reuses.
A message's row is shorter than 1 by what the model cannot read: Han characters for the embedding, n-grams
never seen in training for the TF-IDF blocks (see NgramTfidf). So an unfamiliar message gets small logits and
a low similarity to every training example instead of a confident guess from the one word it shares.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from bot.language import han_share

UNSEEN_WEIGHT = 0.5  # an unseen n-gram's weight in the row norm, as a multiple of the largest idf
WORD_JOIN = "\u2581"  # joins the tokens of a word bigram (cannot occur inside a token)


@dataclass
class FeatureSettings:
    """Block weights and n-gram ranges (checked on Bitext train/dev and a small bilingual dev set)."""

    embedding_weight: float = 1.0
    char_weight: float = 1.0
    word_weight: float = 1.0
    char_ngrams: tuple[int, int] = (1, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    max_features: int = 200_000
    embedding_reads_han: bool = False  # a multilingual encoder: no need to lean on n-grams for Chinese

    def as_dict(self) -> dict[str, Any]:
        return {
            "embedding_reads_han": self.embedding_reads_han,
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
            embedding_reads_han=bool(raw.get("embedding_reads_han", False)),
        )


@dataclass
class Features:
    """Rows of `dense` (weighted embeddings) next to rows of `sparse` (weighted TF-IDF); unit length together."""

    dense: np.ndarray
    sparse: sp.csr_matrix
    _blocks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False,
                                                                          compare=False)

    def stacked(self) -> sp.csr_matrix:
        """One matrix for the linear classifier."""
        return sp.hstack([sp.csr_matrix(self.dense), self.sparse], format="csr")

    @cached_property
    def sparse_t(self) -> sp.csr_matrix:
        """The sparse block transposed, kept: transposing 6,000 training rows per message costs milliseconds."""
        return self.sparse.T.tocsr()

    def similarity(self, other: Features) -> np.ndarray:
        """Dot products (cosine similarities for full-length rows), shape (len(self), len(other))."""
        return self._dense_similarity(other) + (self.sparse @ other.sparse_t).toarray()

    def _dense_similarity(self, other: Features) -> np.ndarray:
        used = np.flatnonzero(self.dense.any(axis=0))
        if not len(used):
            return np.zeros((len(self), len(other)), dtype=np.float32)
        start, end = int(used[0]), int(used[-1]) + 1
        if end - start == self.dense.shape[1]:
            return self.dense @ other.dense.T
        rows, block = other.column_block(start, end)
        out = np.zeros((len(self), len(other)), dtype=np.float32)
        out[:, rows] = self.dense[:, start:end] @ block.T
        return out

    def column_block(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows with anything in columns [start, end), and those columns of them, contiguous. A message is
        embedded by its language's encoder only (one block of columns, zeros elsewhere), so it meets only the
        rows of that block: a quarter of the training matrix to read per message instead of all of it."""
        cached = self._blocks.get((start, end))
        if cached is None:
            part = self.dense[:, start:end]
            rows = np.flatnonzero(part.any(axis=1))
            cached = self._blocks[(start, end)] = (rows, np.ascontiguousarray(part[rows]))
        return cached

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


class NgramTfidf:
    """TF-IDF over n-grams (sublinear tf, smoothed idf) whose row norm counts the n-grams it has never seen.

    sklearn's TfidfVectorizer drops unknown n-grams and then normalises what is left, so a message sharing a
    single character with the training data becomes a unit vector on that character, and the classifier is
    sure of itself. Here unknown n-grams keep their weight (the idf of an n-gram seen in no example) in the
    norm: a row's length is the share of the message the vocabulary knows, 1.0 for training examples.
    """

    def __init__(self, analyzer: Callable[[Any], list[str]], vocabulary: list[str] | None = None,
                 idf: np.ndarray | None = None, n_documents: int = 0) -> None:
        self.analyzer = analyzer
        self.terms = list(vocabulary or [])
        self.index = {term: i for i, term in enumerate(self.terms)}
        self.idf = np.asarray(idf if idf is not None else np.zeros(0), dtype=np.float32)
        self._idf_list: list[float] = self.idf.tolist()
        self.n_documents = n_documents

    @property
    def unseen_idf(self) -> float:
        return float(np.log(1.0 + self.n_documents) + 1.0) * UNSEEN_WEIGHT

    def fit(self, documents: list[Any], max_features: int) -> None:
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(self.analyzer(doc)))
        kept = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:max_features]
        self.terms = [term for term, _ in kept]
        self.index = {term: i for i, term in enumerate(self.terms)}
        self.n_documents = len(documents)
        counts = np.array([count for _, count in kept], dtype=np.float64)
        self.idf = (np.log((1.0 + self.n_documents) / (1.0 + counts)) + 1.0).astype(np.float32)
        self._idf_list = self.idf.tolist()

    def rows(self, documents: list[Any], scale: float = 1.0) -> Iterator[tuple[list[int], list[float]]]:
        """Per document: the known n-grams' columns and their weights, the row normalised (unknown n-grams in the
        norm) and multiplied by `scale`. Plain Python lists: this runs per message, and the caller builds one
        sparse matrix of several blocks (each scipy matrix made costs ~0.1 ms)."""
        unseen, index, idf = self.unseen_idf, self.index, self._idf_list
        for doc in documents:
            norm_sq = 0.0
            row_indices, row_weights = [], []
            for term, count in Counter(self.analyzer(doc)).items():
                tf = 1.0 if count == 1 else 1.0 + math.log(count)
                i = index.get(term)
                weight = tf * (unseen if i is None else idf[i])
                norm_sq += weight * weight
                if i is not None:
                    row_indices.append(i)
                    row_weights.append(weight)
            factor = scale / math.sqrt(norm_sq) if norm_sq > 0 else 0.0
            yield row_indices, [w * factor for w in row_weights]


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside space-padded words of the lower-cased text (sklearn's "char_wb")."""
    low, high = ngram_range
    out: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n > length:
                if n == low:
                    out.append(padded)
                break
            out.extend(padded[i : i + n] for i in range(length - n + 1))
    return out


@dataclass
class Featurizer:
    settings: FeatureSettings = field(default_factory=FeatureSettings)
    chars: NgramTfidf | None = None
    words: NgramTfidf | None = None

    def _char_analyzer(self, text: str) -> list[str]:
        return char_wb_ngrams(text, self.settings.char_ngrams)

    def _word_analyzer(self, tokens: list[str]) -> list[str]:
        return word_ngrams(tokens, self.settings.word_ngrams)

    def fit(self, texts: list[str], tokens: list[list[str]]) -> None:
        self.chars = NgramTfidf(self._char_analyzer)
        self.chars.fit(texts, self.settings.max_features)
        self.words = NgramTfidf(self._word_analyzer)
        self.words.fit(tokens, self.settings.max_features)

    def transform(self, texts: list[str], tokens: list[list[str]], embeddings: np.ndarray) -> Features:
        """Blocks weighted and scaled so that a fully known message has length 1 (see module doc)."""
        if self.chars is None or self.words is None:
            raise RuntimeError("featurizer used before fit/load")
        s = self.settings
        total = np.sqrt(s.embedding_weight**2 + s.char_weight**2 + s.word_weight**2)
        readable = np.ones(len(texts), dtype=np.float32) if s.embedding_reads_han else \
            np.array([1.0 - han_share(t) for t in texts], dtype=np.float32)
        dense = embeddings.astype(np.float32) * (s.embedding_weight * readable / total)[:, None]
        n_chars = len(self.chars.terms)
        indptr, indices, values = [0], [], []
        for (char_columns, char_weights), (word_columns, word_weights) in zip(
                self.chars.rows(texts, s.char_weight / total), self.words.rows(tokens, s.word_weight / total),
                strict=True):
            indices += char_columns
            indices += [n_chars + i for i in word_columns]
            values += char_weights
            values += word_weights
            indptr.append(len(indices))
        sparse = sp.csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
            shape=(len(texts), n_chars + len(self.words.terms)))
        return Features(np.ascontiguousarray(dense, dtype=np.float32), sparse)

    # persistence: vocabularies and idf weights as plain lists and arrays (no pickle)
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.chars is None or self.words is None:
            raise RuntimeError("featurizer used before fit/load")
        meta = {
            "settings": self.settings.as_dict(),
            "char_vocabulary": self.chars.terms,
            "word_vocabulary": self.words.terms,
            "char_documents": self.chars.n_documents,
            "word_documents": self.words.n_documents,
        }
        return meta, {"char_idf": self.chars.idf, "word_idf": self.words.idf}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Featurizer:
        featurizer = cls(FeatureSettings.from_dict(meta["settings"]))
        for key in ("char", "word"):
            if len(meta[f"{key}_vocabulary"]) != len(arrays[f"{key}_idf"]):
                raise ValueError(f"{key} vocabulary and idf sizes differ")
        featurizer.chars = NgramTfidf(
            featurizer._char_analyzer, meta["char_vocabulary"], arrays["char_idf"], int(meta["char_documents"])
        )
        featurizer.words = NgramTfidf(
            featurizer._word_analyzer, meta["word_vocabulary"], arrays["word_idf"], int(meta["word_documents"])
        )
        return featurizer
