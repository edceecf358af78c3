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
from typing import Any

import numpy as np
import scipy.sparse as sp

from bot.language import han_share

UNSEEN_WEIGHT = 0.5  # an unseen n-gram's weight in the row norm, as a multiple of the largest idf
WORD_JOIN = "\u2581"  # joins the tokens of a word bigram (cannot occur inside a token)
TERM_SEPARATOR = "\n"  # between the saved n-grams (text is split on whitespace before n-grams are made)


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

    def similarity(self, other: Features) -> np.ndarray:
        """Dot products (cosine similarities for full-length rows), shape (len(self), len(other))."""
        return self.dense @ other.dense.T + (self.sparse @ other.sparse.T).toarray()

    def rows(self, index: np.ndarray) -> Features:
        return Features(self.dense[index], self.sparse[index])

    def __len__(self) -> int:
        return self.dense.shape[0]


@dataclass(frozen=True)
class ExampleRows:
    """The training rows every message is compared with (the novelty check), kept for that one product.

    The dense part is held one encoder's columns at a time, with only the rows that have anything there: a
    message is embedded by its language's encoder alone, so it meets a quarter of the rows' numbers, and the
    zeros between the blocks (half the matrix with two encoders) are not kept. The sparse part is kept
    transposed: transposing 10,000 rows per message costs milliseconds."""

    blocks: tuple[tuple[int, int, np.ndarray, np.ndarray], ...]  # (first column, end column, rows, their values)
    sparse_t: sp.csr_matrix
    shape: tuple[int, int]  # the rows, the dense columns

    @classmethod
    def of(cls, features: Features, spans: list[tuple[int, int]]) -> ExampleRows:
        """`spans`: each encoder's columns, together all of `features.dense`'s."""
        if sorted(column for span in spans for column in range(*span)) != list(range(features.dense.shape[1])):
            raise ValueError(f"encoder columns {spans} do not cover the {features.dense.shape[1]} embedding columns")
        blocks = []
        for start, end in spans:
            part = features.dense[:, start:end]
            rows = np.flatnonzero(part.any(axis=1))
            blocks.append((start, end, rows, np.ascontiguousarray(part[rows], dtype=np.float32)))
        return cls(tuple(blocks), features.sparse.T.tocsr().astype(np.float32, copy=False), features.dense.shape)

    def nearest(self, features: Features, enough: float = np.inf) -> np.ndarray:
        """Each message's similarity to the row most like it (`features.similarity(rows).max(axis=1)`) — or, where
        the embeddings alone already make some row at least `enough` alike, that lower bound: the n-gram blocks
        only add (TF-IDF weights are not negative), and the novelty check asks no more. Most messages then skip
        the sparse product, the dearer half."""
        if not self.shape[0]:
            return np.full(len(features), -np.inf, dtype=np.float32)
        dense = np.zeros((len(features), self.shape[0]), dtype=np.float32)
        for start, end, rows, values in self.blocks:
            part = features.dense[:, start:end]
            if len(rows) and part.any():
                dense[:, rows] += part @ values.T
        best = dense.max(axis=1)
        unsure = np.flatnonzero(best < enough)
        if len(unsure):
            whole = dense[unsure] + (features.sparse[unsure] @ self.sparse_t).toarray()
            best[unsure] = whole.max(axis=1)
        return best

    def features(self) -> Features:
        """The rows as they were, for saving."""
        dense = np.zeros(self.shape, dtype=np.float32)
        for start, end, rows, values in self.blocks:
            dense[rows, start:end] = values
        return Features(dense, self.sparse_t.T.tocsr())

    def __len__(self) -> int:
        return self.shape[0]


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
        self._set_vocabulary(list(vocabulary or []))
        self.idf = np.asarray(idf if idf is not None else np.zeros(0), dtype=np.float32)
        self.n_documents = n_documents

    def _set_vocabulary(self, terms: list[str]) -> None:
        """The n-grams are looked up by their 64-bit hash in a sorted array, and kept for saving as one string: a
        dict of 200,000 strings would hold ~45 MB of objects, which the workers' reads would copy out of the
        memory they share (each read writes a reference count). Two n-grams share a hash with odds of about one in
        10^14 per message. The hash is of the UTF-8 bytes: Python's str hash reads a string's internal form, in
        which '杯' and 'og' are the same two bytes."""
        if any(TERM_SEPARATOR in term for term in terms):
            raise ValueError("an n-gram contains a line break")
        self.size = len(terms)
        self._vocabulary = TERM_SEPARATOR.join(terms)
        hashes = _hashes(terms)
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._columns = hashes[order], order.astype(np.int64)

    @property
    def terms(self) -> list[str]:
        return self._vocabulary.split(TERM_SEPARATOR) if self.size else []

    def columns(self, terms: list[str]) -> np.ndarray:
        """Each term's column, -1 for a term not in the vocabulary."""
        hashes = _hashes(terms)
        if not self.size:
            return np.full(len(terms), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._hashes, hashes), self.size - 1)
        return np.where(self._hashes[at] == hashes, self._columns[at], -1)

    @property
    def unseen_idf(self) -> float:
        return float(np.log(1.0 + self.n_documents) + 1.0) * UNSEEN_WEIGHT

    def fit(self, documents: list[Any], max_features: int) -> None:
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(self.analyzer(doc)))
        usable = (kv for kv in df.items() if TERM_SEPARATOR not in kv[0])
        kept = sorted(usable, key=lambda kv: (-kv[1], kv[0]))[:max_features]
        self._set_vocabulary([term for term, _ in kept])
        self.n_documents = len(documents)
        counts = np.array([count for _, count in kept], dtype=np.float64)
        self.idf = (np.log((1.0 + self.n_documents) / (1.0 + counts)) + 1.0).astype(np.float32)

    def rows(self, documents: list[Any], scale: float = 1.0) -> Iterator[tuple[list[int], list[float]]]:
        """Per document: the known n-grams' columns and their weights, the row normalised (unknown n-grams in the
        norm) and multiplied by `scale`. Plain Python lists: this runs per message, and the caller builds one
        sparse matrix of several blocks (each scipy matrix made costs ~0.1 ms)."""
        unseen = self.unseen_idf
        for doc in documents:
            counts = Counter(self.analyzer(doc))
            if not counts:
                yield [], []
                continue
            columns = self.columns(list(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            tf = np.where(tf == 1.0, 1.0, 1.0 + np.log(tf))
            known = columns >= 0
            weights = tf * np.where(known, self.idf[np.maximum(columns, 0)], unseen)
            norm = math.sqrt(float(weights @ weights))
            factor = scale / norm if norm > 0 else 0.0
            yield columns[known].tolist(), (weights[known] * factor).tolist()


def _hashes(terms: list[str]) -> np.ndarray:
    return np.fromiter([hash(term.encode()) for term in terms], dtype=np.int64, count=len(terms))


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
        n_chars = self.chars.size
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
            shape=(len(texts), n_chars + self.words.size))
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
