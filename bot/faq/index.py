"""FAQ index: dense (FAISS inner product over each language's encoder) + lexical (BM25) + the entry selector,
fused into one calibrated probability.

Rows: every question phrasing of every entry, in both languages, plus at a lower weight (`EXTRA_WEIGHT`)
each answer text and the entry's tags (one row per script): answers and tags name words a shopper uses —
"支付宝", "PayPal", "邮费" — that the phrasings may not.
Rows are stored language-major (all zh rows, then all en rows), grouped by entry inside a language, so the
dense search reads one contiguous range of rows, the query's language: a Chinese query is never
compared densely with English phrasings (each language has its own encoder and vector block, see
bot/nlu/embedder.py; cosines across blocks are zero, not evidence). The lexical index
covers all rows; its terms do not cross languages by themselves, except shared Latin words ("PayPal").

Search for one query:

1. candidates: the dense top-`CANDIDATES` rows of the query's language, the lexical top-`CANDIDATES` rows and
   the selector's top-`SELECTOR_CANDIDATES` entries
   (above `SELECTOR_MIN`);
2. per candidate entry: dense = max cosine over its phrasings in the query's language (clipped to [0, 1]),
   lexical = max over its phrasings of BM25 / the query's BM25 self-score (see `lexical.py`);
   answer and tag rows count at `EXTRA_WEIGHT` times their score; selector = the probability a classifier
   trained on all phrasings gives the entry (see `selector.py`);
3. score = P(this entry is the right answer): a logistic model of (dense, lexical, selector) per query language
   gives each candidate a logit, and a softmax over the candidates and a "none of them" logit, at a fitted
   temperature, turns them into probabilities (both fitted at build time on the FAQ itself — left-out
   phrasings and out-of-scope background questions, see `calibration.py`) — so one threshold,
   `config.kefu.thresholds.faq`, decides for every query whether the FAQ answers.

Cost per query beyond the embedding: one matrix-vector product (or an HNSW search), one BM25 posting sum, the
selector's n-grams and one small matrix product, a few numpy gathers. Searching is read-only and thread-safe.

Scale: the dense search is exact (the vectors of the `faiss.IndexFlatIP` of all rows, the language's range) while
a language has at most `FLAT_MAX` (10,000) rows; a language with more also gets an approximate HNSW graph of its
own rows (`vector_index`), because an exact scan grows with the rows: a whole search takes ~3.4 ms of CPU at
10,000 rows a language, 6 ms at 20,000, 18 ms at 50,000 — with HNSW 1.7 ms at 50,000, the same answer 99.85% of
the time. The candidates' dense and lexical scores stay exact, so the graph only decides which entries become
candidates. `benchmarks/bench_faq_scale.py` measures all this (docs/design.md, "FAQ at scale").

On disk (`persist`/`load`): faq.faiss (faiss.write_index), faq_lexical.npz (BM25 arrays), faq_selector.npz
(the selector's weights and idf), faq_graph_<lang>.faiss (the HNSW graphs, if any) and faq_index.json
(entries, row metadata, calibration, the selector's vocabularies, and the other files' SHA-256), written last,
so a missing, truncated or half-written index is reported by `load` as FAQIndexError instead of half-working.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.durable import write_atomically
from bot.faq import calibration
from bot.faq.background import BACKGROUND_QUESTIONS
from bot.faq.calibration import Calibration
from bot.faq.lexical import ANALYZER_VERSION, BM25, analyze, has_content
from bot.faq.selector import MAX_ENTRIES as MAX_SELECTOR_ENTRIES
from bot.faq.selector import EntrySelector
from bot.formats.faq_data import FAQEntry
from bot.language import LANGUAGES, SAMPLE_MESSAGES, detect_language, mainland_chinese
from bot.nlu.embedder import Embedder

FORMAT_VERSION = 2  # 2: the entry selector
EXTRA_WEIGHT = 0.8  # answer and tag rows count at this fraction of a question phrasing
QUESTION, ANSWER, TAGS = 0, 1, 2
CANDIDATES = 32
SELECTOR_CANDIDATES = 8
SELECTOR_MIN = 0.05  # a selector guess below this is no reason to look at an entry
SELECTOR_GUESS = 10.0  # how much the selector counts when picking the most confusable entry to calibrate on
EMBED_BATCH = 128
# Dense search (see `vector_index`): exact up to FLAT_MAX rows in a language (phrasings, answers and tag lines),
# HNSW beyond. Chosen with benchmarks/bench_faq_scale.py on 2 cores (docs/design.md, "FAQ at scale"); recall@10
# of the graph's rows against exact search at 50,000 rows a language in the comments.
FLAT_MAX = 10_000  # an exact search here costs ≤ 5 ms CPU at p99, half the 10 ms budget; at 20,000 over 7 ms
HNSW_M = 32  # links per vector: 0.9975; 16: 0.9965; 48: 0.9999 but builds 2–3× slower
HNSW_EF_CONSTRUCTION = 80  # 40: 0.9865; 160: 0.9995 but builds 2× slower (80: ~25 s for 100,000 rows, a live edit too)
HNSW_EF_SEARCH = 64  # 32: 0.9935; 128: 0.9979 for twice the graph's 0.13 ms (raised to k when k is larger)

VECTORS_FILE = "faq.faiss"
LEXICAL_FILE = "faq_lexical.npz"
SELECTOR_FILE = "faq_selector.npz"
GRAPH_FILE = "faq_graph_{}.faiss"  # one per language that has an HNSW graph
MANIFEST_FILE = "faq_index.json"  # written last: its presence and checksums mean the index is complete

Progress = Callable[[str], None]  # the project's progress callback: one line of text at a time
# texts new to an index -> their vectors (n, dim) and BM25 terms (see FAQIndex.updated, bot/knowledge/builder.py)
Prepare = Callable[[list[str]], tuple[np.ndarray, list[list[str]]]]


class FAQIndexError(RuntimeError):
    """The FAQ index on disk is missing, corrupt, half-written or built for another model."""


@dataclass
class FAQHit:
    id: str
    score: float
    answer: str
    question: str  # the stored phrasing that matched best
    category: str
    dense: float
    lexical: float
    selector: float = 0.0
    # published since `kefu train` (bot/knowledge/), the entry or the phrasing that matched best: the intent
    # classifier never saw it, so its opinion of the message is no evidence against this answer
    untrained: bool = False

    def as_dict(self) -> dict[str, Any]:
        found = {
            "id": self.id,
            "score": self.score,
            "answer": self.answer,
            "question": self.question,
            "category": self.category,
            "dense": self.dense,
            "lexical": self.lexical,
            "selector": self.selector,
        }
        if self.untrained:
            found["untrained"] = True
        return found


def _row_language(key: str, text: str) -> str:
    """Language of a phrasing: the data's key when it is zh/en, else the script (for `questions: [..]`)."""
    if key in LANGUAGES:
        return key
    return detect_language(text)


def query_language(language: str, text: str) -> str:
    return language if language in LANGUAGES else _row_language("", text)


@dataclass
class _Rows:
    """Row metadata, parallel to the FAISS index and the BM25 matrix."""

    entry: np.ndarray  # (n,) int32: position in the entry list
    language: list[str]
    kind: np.ndarray  # (n,) int8: QUESTION, ANSWER or TAGS
    text: list[str]
    weight: np.ndarray = field(init=False)  # (n,) float32: 1 for questions, EXTRA_WEIGHT for the others
    blocks: dict[str, tuple[int, int]] = field(init=False)  # language -> [start, end)
    segments: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False)  # language -> (entries, starts)

    def __post_init__(self) -> None:
        self.weight = np.where(self.kind == QUESTION, 1.0, EXTRA_WEIGHT).astype(np.float32)
        self.blocks = {}
        self.segments = {}
        start = 0
        for lang in LANGUAGES:
            end = start + sum(1 for x in self.language[start:] if x == lang)
            self.blocks[lang] = (start, end)
            entries = self.entry[start:end]
            change = np.flatnonzero(np.diff(entries)) + 1
            starts = np.concatenate([[0], change]).astype(np.int64) if end > start else np.zeros(0, np.int64)
            self.segments[lang] = (entries[starts].astype(np.int64), starts + start)
            start = end

    def __len__(self) -> int:
        return len(self.text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry.tolist(),
            "language": self.language,
            "kind": self.kind.tolist(),
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Rows:
        return cls(
            entry=np.asarray(data["entry"], dtype=np.int32),
            language=[str(x) for x in data["language"]],
            kind=np.asarray(data["kind"], dtype=np.int8),
            text=[str(x) for x in data["text"]],
        )


def _check_unique_ids(entries: Sequence[FAQEntry]) -> None:
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"FAQ ids must be unique; repeated: {', '.join(dupes)}")


def _layout(entries: list[FAQEntry]) -> _Rows:
    """Rows language-major, grouped by entry inside each language (blocks and segments rely on it); their texts
    as the index reads them (traditional characters as simplified, like the messages searched)."""
    per_lang: dict[str, list[tuple[int, int, str]]] = {lang: [] for lang in LANGUAGES}
    for e, entry in enumerate(entries):
        for key, phrasings in entry.questions.items():
            for text in phrasings:
                if text.strip():
                    per_lang[_row_language(key, text)].append((e, QUESTION, mainland_chinese(text)))
        if EXTRA_WEIGHT > 0:
            for key, text in entry.answers.items():
                if text.strip():
                    per_lang[_row_language(key, text)].append((e, ANSWER, mainland_chinese(text)))
            tags = [t.strip() for t in entry.tags if t.strip()]
            for lang in LANGUAGES:
                mine = [t for t in tags if _row_language("", t) == lang]
                if mine:
                    per_lang[lang].append((e, TAGS, mainland_chinese(", ".join(mine))))
    items = [row for lang in LANGUAGES for row in sorted(per_lang[lang], key=lambda r: (r[0], r[1]))]
    languages = [lang for lang in LANGUAGES for _ in per_lang[lang]]
    return _Rows(
        entry=np.array([r[0] for r in items], dtype=np.int32),
        language=languages,
        kind=np.array([r[1] for r in items], dtype=np.int8),
        text=[r[2] for r in items],
    )


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run FAISS on the calling thread alone (OpenMP's thread count is per thread): a search of one query split
    over OpenMP threads waits for cores that other searches and workers hold — an exact search of 20,000 rows on a
    busy 2-core machine took 68 ms instead of 2.7 ms — and gains nothing when they are free."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def vector_index(dim: int, count: int, flat_max: int = FLAT_MAX) -> faiss.Index:
    """The FAISS index for `count` vectors of one language: exact (`IndexFlatIP`) up to `flat_max`, HNSW beyond.

    An exact search reads every vector, so its time grows with the FAQ; HNSW reads a few thousand whatever the
    size, for 0.25% of the true nearest rows missed (benchmarks/bench_faq_scale.py). Below the threshold exact
    costs little, is reproducible and needs no graph to build; `FAQIndex` then searches its shared flat index.
    """
    if count <= flat_max:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


@dataclass(frozen=True)
class _Graph:
    """An approximate index of one language's rows, on the vector columns its encoder fills (the others are
    zero for every row of the language, so leaving them out changes no inner product and saves memory)."""

    index: faiss.Index  # ids 0.. are rows start..
    start: int
    columns: tuple[int, int]  # [lo, hi)

    def search(self, vector: np.ndarray, k: int) -> np.ndarray:
        lo, hi = self.columns
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        with _one_thread():
            _, ids = self.index.search(vector[None, lo:hi], k, params=params)
        return ids[0][ids[0] >= 0] + self.start


def _used_columns(block: np.ndarray) -> tuple[int, int]:
    """[lo, hi): the vector columns a language's rows fill (its encoder's block; zero elsewhere)."""
    used = np.flatnonzero(np.any(block != 0, axis=0)) if len(block) else np.zeros(0, np.int64)
    return (int(used[0]), int(used[-1]) + 1) if len(used) else (0, block.shape[1])


def _build_graphs(rows: _Rows, vectors: np.ndarray, flat_max: int) -> dict[str, _Graph]:
    """An HNSW graph for each language whose rows `vector_index` will not search exactly."""
    graphs = {}
    for lang, (start, end) in rows.blocks.items():
        block = vectors[start:end]
        lo, hi = _used_columns(block)
        index = vector_index(hi - lo, end - start, flat_max)
        if isinstance(index, faiss.IndexFlat):
            continue  # exact: FAQIndex's flat index of all rows, restricted to this language's range
        index.add(np.ascontiguousarray(block[:, lo:hi]))
        graphs[lang] = _Graph(index, start, (lo, hi))
    return graphs


class FAQIndex:
    """Search FAQ entries by a shopper's message; see the module docstring for how scores are made."""

    def __init__(
        self,
        entry_list: list[FAQEntry],
        rows: _Rows,
        vectors: faiss.IndexFlatIP,
        lexical: BM25,
        calibrations: dict[str, Calibration],
        embedder: Embedder,
        selector: EntrySelector | None = None,
        graphs: dict[str, _Graph] | None = None,
        flat_max: int = FLAT_MAX,
    ) -> None:
        """`graphs`: HNSW graphs read from disk; None builds them for the languages above `flat_max` rows."""
        self._entry_list = entry_list
        self.entries: dict[str, FAQEntry] = {e.id: e for e in entry_list}
        self._rows = rows
        self._index = vectors
        self._lexical = lexical
        self.calibrations = calibrations
        self._embedder = embedder
        self._selector = selector
        self.embedded = len(rows)  # texts this index had to embed (`updated` reuses the others)
        self._analyzed: dict[str, list[str]] = {}  # text -> BM25 terms, for `updated` (see `prepare_updates`)
        self.trained_ids = frozenset(self.entries)  # the entries `kefu train` saw (`updated` keeps the original's)
        # the phrasings it saw: the intent classifier knows these, not those added live (see FAQHit.untrained)
        self.trained_questions = frozenset(np.asarray(rows.text, dtype=object)[rows.kind == QUESTION])
        n = vectors.ntotal
        # per entry: its question rows (for naming the phrasing that matched best)
        by_entry = np.argsort(rows.entry, kind="stable")
        split = np.searchsorted(rows.entry[by_entry], np.arange(1, len(entry_list)))
        self._questions: list[np.ndarray] = [
            r[rows.kind[r] == QUESTION] for r in np.split(by_entry, split)
        ] if len(entry_list) else []
        self._vectors = (
            faiss.rev_swig_ptr(vectors.get_xb(), n * vectors.d).reshape(n, vectors.d)
            if n
            else np.zeros((0, vectors.d), dtype=np.float32)
        )
        self._flat_max = flat_max
        self._graphs = graphs if graphs is not None else _build_graphs(rows, self._vectors, flat_max)
        # per language: the columns its encoder fills, all an exact search of its rows needs to read
        self._columns = {lang: slice(*_used_columns(self._vectors[start:end]))
                         for lang, (start, end) in rows.blocks.items()}

    def __len__(self) -> int:
        return len(self._entry_list)

    @property
    def approximate(self) -> frozenset[str]:
        """The languages whose dense search is approximate (HNSW): those with more than `FLAT_MAX` rows."""
        return frozenset(self._graphs)

    def exact(self) -> FAQIndex:
        """This index with exact dense search at any size (sharing all its data): the reference the approximate
        search is measured against."""
        twin = copy.copy(self)
        twin._graphs = {}
        return twin

    # ---------------------------------------------------------------- build

    @classmethod
    def build(
        cls, entries: list[FAQEntry], embedder: Embedder, progress: Progress | None = None, flat_max: int = FLAT_MAX
    ) -> FAQIndex:
        """Embed every row, index it densely and lexically, and fit the score calibration.

        `progress(message)` is told how the embedding goes (nearly all of the cost) and what the calibration
        came to. `flat_max`: see `vector_index`.
        """
        _check_unique_ids(entries)
        entry_list = list(entries)
        rows = _layout(entry_list)
        vectors = np.zeros((len(rows), embedder.dim), dtype=np.float32)
        for start in range(0, len(rows), EMBED_BATCH):
            batch = rows.text[start : start + EMBED_BATCH]
            vectors[start : start + len(batch)] = embedder.encode(batch)
            if progress and len(rows) > EMBED_BATCH:
                progress(f"FAQ: embedded {start + len(batch)}/{len(rows)} texts")
        index = faiss.IndexFlatIP(embedder.dim)
        if len(rows):
            index.add(vectors)
        lexical = BM25.build([analyze(t) for t in rows.text])
        background = {lang: BACKGROUND_QUESTIONS.get(lang, []) if len(rows) else [] for lang in LANGUAGES}
        background_texts = [q for lang in LANGUAGES for q in background[lang]]
        background_vectors = embedder.encode(background_texts)
        selector, held_out = None, None
        if len(entry_list) > MAX_SELECTOR_ENTRIES:
            if progress:
                progress(f"FAQ: {len(entry_list)} entries, more than the entry selector takes "
                         f"({MAX_SELECTOR_ENTRIES}): dense and BM25 only")
        elif len(entry_list) + bool(background_texts) >= 2:
            if progress:
                progress(f"FAQ: training the entry selector on {len(rows) + len(background_texts)} texts")
            selector, held_out = EntrySelector.fit(
                [e.id for e in entry_list], rows.text, rows.entry, rows.weight, rows.kind == QUESTION, vectors,
                background_texts, background_vectors, embedder.multilingual,
            )
        if held_out is None:  # no selector, or too little data to cross-validate it: it gets no weight
            held_out = np.zeros((len(rows) + len(background_texts), len(entry_list)), dtype=np.float32)
        self = cls(entry_list, rows, index, lexical, {}, embedder, selector, flat_max=flat_max)
        if progress and self._graphs:
            progress(f"FAQ: approximate (HNSW) dense search for {', '.join(sorted(self._graphs))}: "
                     f"more than {flat_max} rows")
        rows_held_out, background_held_out = held_out[: len(rows)], held_out[len(rows) :]
        offset = 0
        for lang in LANGUAGES:
            mine = slice(offset, offset + len(background[lang]))
            self.calibrations[lang] = self._fit_calibration(
                lang, background[lang], background_vectors[mine], rows_held_out, background_held_out[mine]
            )
            offset = mine.stop
        if progress and len(rows):
            progress("FAQ: " + "; ".join(f"{lang} {c.describe()}" for lang, c in self.calibrations.items()))
        return self

    def updated(self, entries: list[FAQEntry], prepare: Prepare | None = None) -> FAQIndex:
        """A new index over `entries` for a live edit (bot/knowledge/): only texts this index has not seen are
        embedded and analysed for BM25 (by `prepare`, default `prepare_texts`, in this thread), the dense and
        lexical indexes are rebuilt (fast), and the entry selector and the score calibration are kept — fitting
        them is most of a `kefu train`'s FAQ time (a minute for the demo shop), and a few changed entries
        hardly move them. New entries get no selector evidence until the next `kefu train`. This index is not
        changed: searches running on it finish on it. A language above `FLAT_MAX` rows gets its HNSW graph
        built anew (~10 s for 50,000 rows on 2 cores)."""
        _check_unique_ids(entries)
        entry_list = list(entries)
        rows = _layout(entry_list)
        known = {text: i for i, text in enumerate(self._rows.text)}
        new_texts = [text for text in dict.fromkeys(rows.text) if text not in known]
        new_vectors, new_terms = (prepare or self.prepare_texts)(new_texts)
        fresh = {text: i for i, text in enumerate(new_texts)}
        vectors = np.zeros((len(rows), self._index.d), dtype=np.float32)
        for i, text in enumerate(rows.text):
            vectors[i] = self._vectors[known[text]] if text in known else new_vectors[fresh[text]]
        index = faiss.IndexFlatIP(self._index.d)
        if len(rows):
            index.add(vectors)
        analyzed = dict(zip(new_texts, new_terms, strict=True))
        for text in set(rows.text) - analyzed.keys():
            analyzed[text] = self._analyzed.get(text) or analyze(text)
        lexical = BM25.build([analyzed[t] for t in rows.text])
        selector = self._selector.for_entries([e.id for e in entry_list]) if self._selector is not None else None
        updated = FAQIndex(entry_list, rows, index, lexical, dict(self.calibrations), self._embedder, selector,
                           flat_max=self._flat_max)
        updated.embedded = len(new_texts)
        updated._analyzed = analyzed
        updated.trained_ids = self.trained_ids
        updated.trained_questions = self.trained_questions
        return updated

    def prepare_texts(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        """Texts new to the index, embedded and analysed for BM25, in this thread."""
        return prepare_texts(self._embedder, texts)

    def vectors_of(self, entry_ids: set[str]) -> np.ndarray:
        """The dense vectors of these entries' rows (questions, answers, tags): (n, dim)."""
        wanted = np.array([e.id in entry_ids for e in self._entry_list], dtype=bool)
        if not len(self._rows) or not wanted.any():
            return np.zeros((0, self._index.d), dtype=np.float32)
        return self._vectors[wanted[self._rows.entry]]

    def prepare_updates(self) -> None:
        """Analyse every row for BM25 now (seconds for the demo shop, most of an update's cost), so the first
        `updated` is as fast as the next ones. Blocking: run it off the event loop."""
        self._analyzed = {text: self._analyzed.get(text) or analyze(text) for text in set(self._rows.text)}

    def _fit_calibration(
        self,
        lang: str,
        background: list[str],
        background_vectors: np.ndarray,
        held_out: np.ndarray,
        background_held_out: np.ndarray,
    ) -> Calibration:
        """Fit `lang`'s score calibration (see `calibration.py`); `held_out`: the selector's out-of-fold
        probabilities per row, `background_held_out` the same for the background questions.

        Positives: each question phrasing, left out of the index, against its own entry. Negatives: the
        other entries it would be confused with (the best-looking one and a few at random), and the best
        entries for the background questions (`background.py`): what out of scope looks like here.
        """
        rows = self._rows
        start, end = rows.blocks[lang]
        queries = np.flatnonzero(rows.kind[start:end] == QUESTION) + start
        rng = np.random.default_rng(0)
        if len(queries) > calibration.MAX_QUERIES:
            queries = np.sort(rng.choice(queries, calibration.MAX_QUERIES, replace=False))
        if not len(self._entry_list) or not len(queries):
            return calibration.fit(np.zeros((0, 3)), np.zeros(0), np.zeros(0), lang, dense_top1=0.0)
        guess = calibration.prior(lang)
        groups: list[tuple[np.ndarray, float]] = []  # (features (n, 2), label) per group of samples
        positives, confusions = [], []
        everything: list[tuple[np.ndarray, ...]] = []  # (dense, lexical, selector, own) against every entry
        dense_right = 0  # left-out phrasings whose own entry is the dense top-1
        for chunk in np.array_split(queries, max(1, len(queries) // 256)):
            dense, lex = self._entry_features(lang, self._vectors[chunk], [rows.text[q] for q in chunk], chunk)
            sel = held_out[chunk]
            own = rows.entry[chunk]
            everything.append((dense, lex, sel, own))
            mine = np.arange(len(chunk)), own
            positives.append(np.stack([dense[mine], lex[mine], sel[mine]], 1))
            dense_right += int((dense.argmax(axis=1) == own).sum())
            logits = guess.logit(dense, lex) + SELECTOR_GUESS * sel
            logits[mine] = -np.inf
            confusions.append(_gather(self._confusions(logits, rng), dense, lex, sel))
        positive_features = np.concatenate(positives)
        groups.append((positive_features, 1.0))
        groups.append((np.concatenate(confusions), 0.0))
        background_logits = np.zeros((0, len(self._entry_list)))
        if background:
            dense, lex = self._entry_features(lang, background_vectors, background, None)
            sel = background_held_out
            background_features = (dense, lex, sel)
            n_top = min(calibration.BACKGROUND_NEGATIVES, len(self._entry_list))
            top = np.argsort(-(guess.logit(dense, lex) + SELECTOR_GUESS * sel), axis=1, kind="stable")[:, :n_top]
            groups.append((_gather(top, dense, lex, sel), 0.0))
        shares = {0: 0.5, 1: 0.5 * (1 - calibration.BACKGROUND_SHARE), 2: 0.5 * calibration.BACKGROUND_SHARE}
        if len(groups) < 3 or not len(groups[1][0]):  # only one kind of negative: it takes all their weight
            shares = {0: 0.5, 1: 0.5, 2: 0.5}
        features = np.concatenate([g for g, _ in groups])
        labels = np.concatenate([np.full(len(g), label) for g, label in groups])
        weights = np.concatenate([np.full(len(g), shares[i] / max(len(g), 1)) for i, (g, _) in enumerate(groups)])
        dense_top1 = dense_right / len(queries)
        fitted = calibration.fit(features, labels, weights * len(weights), lang, dense_top1=dense_top1)
        logits = np.concatenate([fitted.logit(d, x, z) for d, x, z, _ in everything])
        if background:
            background_logits = fitted.logit(*background_features)
        calibration.fit_distribution(fitted, logits, np.concatenate([own for *_, own in everything]),
                                     background_logits)
        return fitted

    def _confusions(self, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per query: the `HARD_NEGATIVES` best-looking other entries, then `RANDOM_NEGATIVES` random others."""
        n_other = len(self._entry_list) - 1
        n_hard = min(calibration.HARD_NEGATIVES, n_other)
        n_random = min(calibration.RANDOM_NEGATIVES, n_other - n_hard)
        order = np.argsort(-logits, axis=1, kind="stable")[:, :n_other]  # own entry (-inf) sorts last
        hard = order[:, :n_hard]
        if not n_random:
            return hard
        rest = order[:, n_hard:]
        pick = np.argsort(rng.random(rest.shape), axis=1)[:, :n_random]
        return np.concatenate([hard, np.take_along_axis(rest, pick, 1)], axis=1)

    def _entry_features(
        self, lang: str, vectors: np.ndarray, texts: list[str], leave_out: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dense, lexical) of each query against every entry, as `_search` computes them, for many
        queries at once; `leave_out[i]` is a row that query i must not see (its own phrasing)."""
        rows = self._rows
        n, n_entries = len(texts), len(self._entry_list)
        dense = np.zeros((n, n_entries), dtype=np.float32)
        start, end = rows.blocks[lang]
        if end > start:
            sims = vectors @ self._vectors[start:end].T
            if leave_out is not None:
                sims[np.arange(n), leave_out - start] = -np.inf
            sims = np.clip(sims, 0.0, 1.0) * rows.weight[start:end]
            seg_entries, seg_starts = rows.segments[lang]
            dense[:, seg_entries] = np.maximum.reduceat(sims, seg_starts - start, axis=1)
        raw = np.stack([self._lexical.normalised_scores(analyze(t)) for t in texts]) * rows.weight
        if leave_out is not None:
            raw[np.arange(n), leave_out] = 0.0
        lex = np.zeros((n, n_entries), dtype=np.float32)
        for block in LANGUAGES:
            b_start, b_end = rows.blocks[block]
            if b_end > b_start:
                b_entries, b_starts = rows.segments[block]
                part = np.maximum.reduceat(raw[:, b_start:b_end], b_starts - b_start, axis=1)
                lex[:, b_entries] = np.maximum(lex[:, b_entries], part)
        return dense, lex

    # ---------------------------------------------------------------- search

    def search(
        self, text: str, language: str, k: int = 3, query_vector: np.ndarray | None = None
    ) -> list[FAQHit]:
        """The best `k` entries for `text`, best first, answers in `language`; [] when nothing matches.

        Pass `query_vector` (the embedding the NLU already made of `text`) to skip embedding it again.
        """
        return self.search_batch([text], [language], k, [query_vector])[0]

    def search_batch(
        self,
        texts: list[str],
        languages: list[str],
        k: int = 3,
        query_vectors: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> list[list[FAQHit]]:
        """`search` for many messages: the ones without a vector embedded in one model call, and the dense and
        selector scores of the whole batch computed together (each reads its weights once per batch, not once
        per message: under load, the search read per message cost as much as the English encoder)."""
        if len(languages) != len(texts):
            raise ValueError("search_batch needs one language per text")
        vectors: list[np.ndarray | None] = (
            [None] * len(texts) if query_vectors is None else list(query_vectors)
        )
        if len(vectors) != len(texts):
            raise ValueError("search_batch needs one query vector per text (or none at all)")
        found: list[list[FAQHit]] = [[] for _ in texts]
        texts = [mainland_chinese(text) for text in texts]  # as the rows were read (`_layout`)
        asked = [i for i, text in enumerate(texts) if has_content(text)] if len(self._rows) and k > 0 else []
        if not asked:
            return found
        missing = [i for i in asked if vectors[i] is None]
        for i, v in zip(missing, self._embedder.encode([texts[i] for i in missing]), strict=True):
            vectors[i] = v
        batch = np.stack([self._check_vector(vectors[i]) for i in asked])  # type: ignore[arg-type]
        asked_texts = [texts[i] for i in asked]
        query_languages = [query_language(languages[i], texts[i]) for i in asked]
        dense = self._dense_search(batch, query_languages, CANDIDATES)
        selector = (self._selector.probabilities(asked_texts, batch) if self._selector is not None
                    else np.zeros((len(asked), len(self._entry_list)), dtype=np.float32))
        for j, i in enumerate(asked):
            found[i] = self._search(asked_texts[j], query_languages[j], k, batch[j], dense[j], selector[j])
        return found

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self._index.d:
            raise ValueError(f"query vector has {vector.shape[0]} dimensions; the FAQ index has {self._index.d}")
        return vector

    def nearest_rows(self, vector: np.ndarray, language: str, k: int) -> np.ndarray:
        """The (up to) `k` rows of `language` nearest `vector` (inner product), best first; approximate for the
        languages in `approximate`."""
        return self._dense_search(self._check_vector(vector)[None, :], [language], k)[0][0]

    def _dense_search(
        self, vectors: np.ndarray, languages: list[str], k: int
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per query (a row of `vectors`, in `languages[i]`): `nearest_rows`, and for an exact search its inner
        product with every row of its language (from the language's first row on), which the candidates' dense
        scores then read rather than compute again.

        Exact: one matrix product per language for the whole batch, on its encoder's columns only — a FAISS
        search of the whole flat index restricted to the language (`IDSelectorRange`) read all 896 columns of
        every row and cost 3–5 times as much (0.5 against 0.1–0.2 ms, the demo shop)."""
        found: list[tuple[np.ndarray, np.ndarray | None]] = [(np.zeros(0, dtype=np.int64), None)] * len(languages)
        for language in dict.fromkeys(languages):
            mine = [i for i, lang in enumerate(languages) if lang == language]
            start, end = self._rows.blocks[language]
            kept = min(k, end - start)
            if kept <= 0:
                continue
            graph = self._graphs.get(language)
            if graph is not None:
                for i in mine:
                    found[i] = (graph.search(vectors[i], kept), None)
                continue
            columns = self._columns[language]
            for i, similarities in zip(mine, vectors[mine][:, columns] @ self._vectors[start:end, columns].T,
                                       strict=True):
                top = (np.argpartition(-similarities, kept - 1)[:kept] if kept < len(similarities)
                       else np.arange(len(similarities)))
                found[i] = (start + top[np.argsort(-similarities[top], kind="stable")], similarities)
        return found

    def _search(self, text: str, lang: str, k: int, vector: np.ndarray,
                dense_found: tuple[np.ndarray, np.ndarray | None], selector: np.ndarray) -> list[FAQHit]:
        """One query's hits, from its `_dense_search` result and its selector probabilities."""
        rows = self._rows
        start, end = rows.blocks[lang]
        n_entries = len(self._entry_list)
        # candidates: entries of the dense top rows (query's language only) and of the lexical top rows
        is_candidate = np.zeros(n_entries, dtype=bool)
        nearest, similarities = dense_found
        is_candidate[rows.entry[nearest]] = True
        top_selector = np.argsort(-selector, kind="stable")[:SELECTOR_CANDIDATES]
        is_candidate[top_selector[selector[top_selector] >= SELECTOR_MIN]] = True
        terms = analyze(text)
        row_lex = self._lexical.normalised_scores(terms) * rows.weight
        lex_rows = np.flatnonzero(row_lex)
        top_lex = lex_rows
        if len(top_lex) > CANDIDATES:
            top_lex = top_lex[np.argpartition(-row_lex[top_lex], CANDIDATES - 1)[:CANDIDATES]]
        is_candidate[rows.entry[top_lex]] = True
        candidates = np.flatnonzero(is_candidate)
        if not len(candidates):
            return []
        # exact components for the candidates: max over all their rows, not just the top rows found above
        lexical = np.zeros(n_entries, dtype=np.float32)
        np.maximum.at(lexical, rows.entry[lex_rows], row_lex[lex_rows])
        dense = np.zeros(n_entries, dtype=np.float32)
        row_dense = np.zeros(len(rows), dtype=np.float32)
        dense_rows = start + np.flatnonzero(is_candidate[rows.entry[start:end]])
        if len(dense_rows):
            cosines = (similarities[dense_rows - start] if similarities is not None
                       else self._vectors[dense_rows] @ vector)
            row_dense[dense_rows] = np.clip(cosines, 0.0, 1.0) * rows.weight[dense_rows]
            np.maximum.at(dense, rows.entry[dense_rows], row_dense[dense_rows])
        calib = self.calibrations.get(lang) or calibration.prior(lang)
        evidence = selector[candidates]
        if self._selector is not None and calib.selector_log_odds:
            evidence = np.where(self._selector.knows[candidates], evidence, calibration.NO_OPINION)
        scores = calib.probabilities(calib.logit(dense[candidates], lexical[candidates], evidence))
        hits = []
        for i in np.argsort(-scores, kind="stable")[:k]:
            e = int(candidates[i])
            entry = self._entry_list[e]
            questions = self._questions[e]
            best = (
                rows.text[questions[int(np.argmax(calib.logit(row_dense[questions], row_lex[questions])))]]
                if len(questions)
                else ""
            )
            untrained = entry.id not in self.trained_ids or (bool(best) and best not in self.trained_questions)
            hits.append(
                FAQHit(
                    id=entry.id,
                    score=round(float(scores[i]), 4),
                    answer=entry.answer(lang),
                    question=best,
                    category=entry.category,
                    dense=round(float(dense[e]), 4),
                    lexical=round(float(lexical[e]), 4),
                    selector=round(float(selector[e]), 4),
                    untrained=untrained,
                )
            )
        return hits

    # ---------------------------------------------------------------- persistence

    def persist(self, directory: Path) -> None:
        """Write the index into an existing directory; the manifest goes last, so a crash leaves no index
        that `load` would accept."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"FAQ index directory {directory} does not exist")
        manifest_path = directory / MANIFEST_FILE
        manifest_path.unlink(missing_ok=True)
        vectors_path = directory / VECTORS_FILE
        write_atomically(vectors_path, lambda p: faiss.write_index(self._index, str(p)))
        lexical_path = directory / LEXICAL_FILE
        write_atomically(lexical_path, lambda p: _save_npz(p, self._lexical.to_arrays()))
        files = {VECTORS_FILE: _sha256(vectors_path), LEXICAL_FILE: _sha256(lexical_path)}
        graphs = {}
        for lang, graph in self._graphs.items():
            name = GRAPH_FILE.format(lang)
            write_atomically(directory / name, lambda p, g=graph: faiss.write_index(g.index, str(p)))
            files[name] = _sha256(directory / name)
            graphs[lang] = {"file": name, "start": graph.start, "columns": list(graph.columns)}
        selector_meta = None
        if self._selector is not None:
            selector_meta, selector_arrays = self._selector.state()
            selector_path = directory / SELECTOR_FILE
            write_atomically(selector_path, lambda p: _save_npz(p, selector_arrays))
            files[SELECTOR_FILE] = _sha256(selector_path)
        manifest = {
            "format": FORMAT_VERSION,
            "analyzer": ANALYZER_VERSION,
            "extra_weight": EXTRA_WEIGHT,
            "embedding_model": getattr(self._embedder, "model_name", None),
            "dim": int(self._index.d),
            "files": files,
            "calibration": {lang: c.as_dict() for lang, c in self.calibrations.items()},
            "selector": selector_meta,
            "graphs": graphs,
            "entries": [{**e.as_dict(), "source": e.source} for e in self._entry_list],
            "rows": self._rows.as_dict(),
        }
        write_atomically(
            manifest_path,
            lambda p: p.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"),
        )

    @classmethod
    def load(cls, directory: Path, embedder: Embedder) -> FAQIndex:
        """Read an index written by `persist`; FAQIndexError says what is wrong and to retrain."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise FAQIndexError(
                f"no FAQ index in {directory} ({MANIFEST_FILE} is missing: never built, or the build "
                "was interrupted); run `kefu train`"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FAQIndexError(f"FAQ index manifest {manifest_path} is corrupt ({exc}); run `kefu train`") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            raise FAQIndexError(
                f"FAQ index in {directory} has format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                f", this kefu reads format {FORMAT_VERSION}; run `kefu train`"
            )
        if manifest.get("analyzer") != ANALYZER_VERSION or manifest.get("extra_weight") != EXTRA_WEIGHT:
            raise FAQIndexError(f"FAQ index in {directory} was built by another kefu version; run `kefu train`")
        for name, digest in (manifest.get("files") or {}).items():
            path = directory / name
            if not path.is_file():
                raise FAQIndexError(f"FAQ index file {path} is missing; run `kefu train`")
            if _sha256(path) != digest:
                raise FAQIndexError(
                    f"FAQ index file {path} is corrupt or half-written (checksum mismatch); run `kefu train`"
                )
        model = getattr(embedder, "model_name", None)
        if manifest.get("dim") != embedder.dim or (model and manifest.get("embedding_model") not in (None, model)):
            raise FAQIndexError(
                f"FAQ index in {directory} was built with embedding model {manifest.get('embedding_model')!r} "
                f"({manifest.get('dim')} dims), but {model!r} ({embedder.dim} dims) is loaded; run `kefu train`"
            )
        try:
            vectors = faiss.read_index(str(directory / VECTORS_FILE))
            with np.load(directory / LEXICAL_FILE, allow_pickle=False) as npz:
                lexical = BM25.from_arrays({k: npz[k] for k in npz.files})
            entries = [FAQEntry(**e) for e in manifest["entries"]]
            rows = _Rows.from_dict(manifest["rows"])
            calibrations = {lang: Calibration.from_dict(c) for lang, c in manifest["calibration"].items()}
            selector = None
            if manifest.get("selector"):
                with np.load(directory / SELECTOR_FILE, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                selector = EntrySelector.from_state(manifest["selector"], arrays, [e.id for e in entries])
            graphs = None if "graphs" not in manifest else {
                lang: _Graph(faiss.read_index(str(directory / g["file"])), int(g["start"]),
                             (int(g["columns"][0]), int(g["columns"][1])))
                for lang, g in manifest["graphs"].items()
            }
        except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:
            raise FAQIndexError(f"FAQ index in {directory} is unreadable ({exc}); run `kefu train`") from None
        if not isinstance(vectors, faiss.IndexFlatIP) or vectors.ntotal != len(rows) or (
            lexical.n_docs != len(rows)
        ) or any(
            rows.blocks.get(lang) != (g.start, g.start + g.index.ntotal) or g.index.d != g.columns[1] - g.columns[0]
            for lang, g in (graphs or {}).items()
        ):
            raise FAQIndexError(f"FAQ index in {directory} is inconsistent (row counts differ); run `kefu train`")
        index = cls(entries, rows, vectors, lexical, calibrations, embedder, selector, graphs)
        index.warm_up()
        return index

    def warm_up(self) -> None:
        """Search once per language: the selector's weights are laid out for one message at a time on first use
        (17 MB on the demo shop) — done at load, before `kefu run --workers` forks, the workers share them."""
        for language, text in SAMPLE_MESSAGES.items():
            start, end = self._rows.blocks.get(language, (0, 0))
            if end > start:
                self.search(text, language)


def prepare_texts(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """What an index needs of texts new to it: their vectors (n, dim) and their BM25 terms."""
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(texts), EMBED_BATCH):
        vectors[start : start + EMBED_BATCH] = embedder.encode(texts[start : start + EMBED_BATCH])
    return vectors, [analyze(t) for t in texts]


def _gather(columns: np.ndarray, *features: np.ndarray) -> np.ndarray:
    """(n_samples, 3): each query's (dense, lexical, selector) for the entries in its row of `columns`."""
    return np.stack([np.take_along_axis(f, columns, 1) for f in features], -1).reshape(-1, len(features))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


