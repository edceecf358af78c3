"""The lexical half of FAQ retrieval: analysis (zh words + character bigrams, stemmed en words) and BM25.

Why a lexical path at all: all-MiniLM-L6-v2 is an English model and maps most Chinese characters to [UNK],
so for Chinese the lexical path does nearly all the work, and for English it catches rare, decisive words
("invoice", "PayPal") that a small embedding model blurs.

Analysis (kept here, not shared with the NLU tokenizer, because a persisted index must be queried with
exactly the analysis it was built with; `ANALYZER_VERSION` is stored with the index):

- CJK runs: jieba words (search mode, so 开发票 also yields 发票), plus character bigrams (``"2:"``) and
  unigrams (``"1:"``) at lower weight (`term_weight`), so "运费" matches "运费多少钱" and 开票 still shares 票
  with 发票 where jieba segments differently. Particles, pronouns and question scaffolding (的 吗 我 怎么
  哪里 可以 …) are dropped, and so are n-grams containing such a character. Question frames (多久 几天 什么时候
  多少 几点 …) stay but weigh `FRAME_WEIGHT`: they say what kind of answer is wanted, not what it is about,
  and at full weight 质保多长时间 went to 快递一般要多长时间 instead of 质保期是多长.
- Latin/digit runs: lower-cased words through a light suffix stripper ("shipping", "shipped", "ships" →
  "ship"), minus a short stop list.

BM25 (Lucene's non-negative idf, k1 = 1.2, b = 0.75) is stored as a sparse doc × term matrix of saturated
term weights, so scoring a query is a sum over the postings of its few terms — no loop over documents.
`normalised_scores` divides by the query's self-score (the BM25 of the query against itself as a document),
so 1.0 means "every query term matched as well as it could"; words never seen in the index count in the
self-score at maximal idf, so a query that is mostly unknown words scores low.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

from bot.language import HAN, HAN_CHARS

ANALYZER_VERSION = 2
K1 = 1.2
B = 0.75

_RUN = re.compile(f"[{HAN_CHARS}]+|[a-z0-9]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EN_STOP = _words(
    """a an the is are was were be been being am do does did doing has have had having i me my mine we us
    our you your it its this that these those to of in on for at by with from and or as can could would will
    shall should may might must how what when where which who whom why please hi hello hey there here s t re
    ll d m ve any some if so just about than then them they their he she his her im"""
)
# Question scaffolding and particles: the Chinese counterpart of EN_STOP ("how", "can", "is there", …).
ZH_STOP_WORDS = _words(
    """的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 我 你 您 他 她 它 我们 你们 他们 请问 请 一下 是 这 那 这个 那个 怎么
    怎么样 怎样 如何 什么 哪 哪里 哪儿 哪些 可以 能 能不能 可不可以 会 要 有 在 还 就 都 也 想"""
)
ZH_STOP_CHARS = frozenset("的了吗呢吧啊呀哦嘛么哈我你您他她它怎什哪在是有能可以要会就都也还这那想请")
UNIGRAM_WEIGHT = 0.5  # a shared character is weak evidence ("修" in 能修吗 / 保修); a shared word is not
BIGRAM_WEIGHT = 0.8
# Question frames: how long / when / how much / why. They say what kind of answer is wanted, not what about,
# so they count, but less than topic words (质保 in 质保多长时间 matters more than 多长时间).
ZH_FRAME_WORDS = _words(
    """多久 多长 多长时间 长时间 时间 几天 几时 什么时候 时候 多少 要不要 有没有 是不是 为什么 怎么办 一般
    大概 多快 几点"""
)
ZH_FRAME_CHARS = frozenset("多久几时候间")
FRAME_WEIGHT = 0.3


def term_weight(term: str) -> float:
    """Multiplier on a term's idf: words 1, character bigrams and unigrams less, question frames less still."""
    if term.startswith("2:"):
        return BIGRAM_WEIGHT * (FRAME_WEIGHT if term[2:] in ZH_FRAME_WORDS else 1.0)
    if term.startswith("1:"):
        return UNIGRAM_WEIGHT * (FRAME_WEIGHT if term[2:] in ZH_FRAME_CHARS else 1.0)
    return FRAME_WEIGHT if term in ZH_FRAME_WORDS else 1.0


def has_content(text: str) -> bool:
    """Whether `text` has any letter, digit or CJK character (a lone "？" or emoji asks nothing)."""
    return bool(_RUN.search(text.lower()))


def stem(word: str) -> str:
    """A light, deterministic English suffix stripper (plural, -ing, -ed, -ly, final -y/-e).

    Not Porter: it only has to map a word's common inflections onto one key, consistently.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and re.search("[aeiouy]", word[: -len(suffix)]):
            word = word[: -len(suffix)]
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith(("y", "e")) and len(word) > 3:
        word = word[:-1]
    return word


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    return jieba


def analyze(text: str) -> list[str]:
    """Index terms of `text` (either language, or both mixed)."""
    terms: list[str] = []
    for run in _RUN.findall(text.lower()):
        if HAN.match(run):
            terms.extend(w for w in _jieba().lcut_for_search(run, HMM=False) if w not in ZH_STOP_WORDS)
            terms.extend("1:" + c for c in run if c not in ZH_STOP_CHARS)
            terms.extend(
                "2:" + run[i : i + 2]
                for i in range(len(run) - 1)
                if run[i] not in ZH_STOP_CHARS and run[i + 1] not in ZH_STOP_CHARS
            )
        elif run not in EN_STOP:
            terms.append(stem(run))
    return terms


@dataclass
class BM25:
    """BM25 over a fixed set of documents: `weights[d, t]` = idf(t) · saturated tf(t, d)."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (n_terms,) float32
    weights: sparse.csc_matrix  # (n_docs, n_terms) float32; CSC so a term's postings are one slice
    avgdl: float

    @classmethod
    def build(cls, documents: list[list[str]]) -> BM25:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths = np.array([len(d) for d in documents], dtype=np.float32)
        for row, terms in enumerate(documents):
            for term, tf in Counter(terms).items():
                rows.append(row)
                cols.append(vocabulary.setdefault(term, len(vocabulary)))
                tfs.append(tf)
        n_docs, n_terms = len(documents), len(vocabulary)
        avgdl = float(lengths.mean()) if n_docs and lengths.sum() else 1.0
        tf = sparse.csc_matrix((np.array(tfs, np.float32), (rows, cols)), shape=(n_docs, n_terms))
        df = np.diff(tf.indptr).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        terms = sorted(vocabulary, key=vocabulary.__getitem__)
        idf = (idf * np.array([term_weight(t) for t in terms])).astype(np.float32)
        weights = tf.copy()
        if weights.nnz:
            doc_norm = K1 * (1 - B + B * lengths / avgdl)
            data = weights.data
            data[:] = data * (K1 + 1) / (data + doc_norm[weights.indices])
            data *= np.repeat(idf, np.diff(weights.indptr))
        return cls(vocabulary, idf, weights.astype(np.float32).tocsc(), avgdl)

    @property
    def n_docs(self) -> int:
        return self.weights.shape[0]

    def max_idf(self) -> float:
        """idf of a term no document contains: what an unknown query word weighs in the self-score."""
        return float(np.log1p((self.n_docs + 0.5) / 0.5))

    def self_score(self, terms: list[str]) -> float:
        """BM25 of the query against itself as a document, known terms at their idf, unknown at max idf."""
        counts = Counter(terms)
        norm = K1 * (1 - B + B * len(terms) / self.avgdl)
        unknown = self.max_idf()
        total = 0.0
        for term, tf in counts.items():
            col = self.vocabulary.get(term)
            idf = float(self.idf[col]) if col is not None else unknown * term_weight(term)
            total += idf * tf * (K1 + 1) / (tf + norm)
        return total

    def scores(self, terms: list[str]) -> np.ndarray:
        """Raw BM25 of the query against every document, (n_docs,) float32."""
        cols = sorted({self.vocabulary[t] for t in terms if t in self.vocabulary})
        if not cols:
            return np.zeros(self.n_docs, dtype=np.float32)
        indptr, indices, data = self.weights.indptr, self.weights.indices, self.weights.data
        if len(cols) == 1:
            c = cols[0]
            out = np.zeros(self.n_docs, dtype=np.float32)
            out[indices[indptr[c] : indptr[c + 1]]] = data[indptr[c] : indptr[c + 1]]
            return out
        idx = np.concatenate([indices[indptr[c] : indptr[c + 1]] for c in cols])
        val = np.concatenate([data[indptr[c] : indptr[c + 1]] for c in cols])
        return np.bincount(idx, weights=val, minlength=self.n_docs).astype(np.float32)

    def normalised_scores(self, terms: list[str]) -> np.ndarray:
        """BM25 / self-score, clipped to [0, 1]: comparable across queries of any length."""
        if not terms or not self.n_docs:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.minimum(self.scores(terms) / max(self.self_score(terms), 1e-6), 1.0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "lex_terms": np.array(terms, dtype=str),
            "lex_idf": self.idf,
            "lex_indptr": self.weights.indptr,
            "lex_indices": self.weights.indices,
            "lex_data": self.weights.data,
            "lex_shape": np.array(self.weights.shape, dtype=np.int64),
            "lex_avgdl": np.array([self.avgdl], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25:
        terms = [str(t) for t in arrays["lex_terms"]]
        shape = tuple(int(x) for x in arrays["lex_shape"])
        weights = sparse.csc_matrix(
            (arrays["lex_data"], arrays["lex_indices"], arrays["lex_indptr"]), shape=shape
        )
        return cls(
            vocabulary={t: i for i, t in enumerate(terms)},
            idf=arrays["lex_idf"].astype(np.float32),
            weights=weights,
            avgdl=float(arrays["lex_avgdl"][0]),
        )
