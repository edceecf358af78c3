"""FAQ index: dense (FAISS inner product over MiniLM vectors) + lexical (BM25), fused into one calibrated score.

Rows: every question phrasing of every entry, in both languages, plus each answer text at a lower weight
(`ANSWER_WEIGHT`; answers name the words a shopper uses — "支付宝", "PayPal" — that phrasings may not).
Rows are stored language-major (all zh rows, then all en rows), grouped by entry inside a language, so a
FAISS `IDSelectorRange` restricts the dense search to the query's language: a Chinese query is never
compared densely with English phrasings (all-MiniLM-L6-v2 cannot match across languages, and its cosines
between unrelated texts in different scripts are noise that must not look like evidence). The lexical index
covers all rows; its terms do not cross languages by themselves, except shared Latin words ("PayPal").

Search for one query:

1. candidates: the dense top-`CANDIDATES` rows of the query's language and the lexical top-`CANDIDATES` rows;
2. per candidate entry: dense = max cosine over its phrasings in the query's language (clipped to [0, 1]),
   lexical = max over its phrasings of BM25 / the query's BM25 self-score (see `lexical.py`);
   answer rows count at `ANSWER_WEIGHT` times their score;
3. score = a logistic calibration of (dense, lexical) per query language, fitted at build time
   leave-one-phrasing-out on the FAQ itself (see `calibration.py`), so one threshold,
   `config.kefu.thresholds.faq`, decides for every query whether the FAQ answers.

Cost per query beyond the embedding: one FAISS search, one BM25 posting sum, a few small numpy gathers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.faq import calibration
from bot.faq.calibration import Calibration
from bot.faq.lexical import ANALYZER_VERSION, BM25, analyze, is_chinese
from bot.formats.faq_data import FAQEntry
from bot.nlu.embedder import Embedder

FORMAT_VERSION = 1
LANGUAGES = ("zh", "en")
ANSWER_WEIGHT = 0.8
CANDIDATES = 32
EMBED_BATCH = 128

VECTORS_FILE = "faq.faiss"
LEXICAL_FILE = "faq_lexical.npz"
MANIFEST_FILE = "faq_index.json"  # written last: its presence and checksums mean the index is complete

Progress = Callable[[int, int], None]


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "answer": self.answer,
            "question": self.question,
            "category": self.category,
            "dense": self.dense,
            "lexical": self.lexical,
        }


def _row_language(key: str, text: str) -> str:
    """Language of a phrasing: the data's key when it is zh/en, else the script (for `questions: [..]`)."""
    if key in LANGUAGES:
        return key
    return "zh" if is_chinese(text) else "en"


def query_language(language: str, text: str) -> str:
    return language if language in LANGUAGES else _row_language("", text)


@dataclass
class _Rows:
    """Row metadata, parallel to the FAISS index and the BM25 matrix."""

    entry: np.ndarray  # (n,) int32: position in the entry list
    language: list[str]
    is_answer: np.ndarray  # (n,) bool
    text: list[str]
    weight: np.ndarray = field(init=False)  # (n,) float32: 1 for questions, ANSWER_WEIGHT for answers
    blocks: dict[str, tuple[int, int]] = field(init=False)  # language -> [start, end)
    segments: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False)  # language -> (entries, starts)

    def __post_init__(self) -> None:
        self.weight = np.where(self.is_answer, ANSWER_WEIGHT, 1.0).astype(np.float32)
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

    def rows_of(self, lang: str, entry: int) -> slice:
        """The rows of `entry` in `lang`'s block (empty slice if it has none)."""
        entries, starts = self.segments[lang]
        pos = int(np.searchsorted(entries, entry))
        if pos >= len(entries) or entries[pos] != entry:
            return slice(0, 0)
        end = int(starts[pos + 1]) if pos + 1 < len(starts) else self.blocks[lang][1]
        return slice(int(starts[pos]), end)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry.tolist(),
            "language": self.language,
            "is_answer": self.is_answer.astype(int).tolist(),
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Rows:
        return cls(
            entry=np.asarray(data["entry"], dtype=np.int32),
            language=[str(x) for x in data["language"]],
            is_answer=np.asarray(data["is_answer"], dtype=bool),
            text=[str(x) for x in data["text"]],
        )


def _layout(entries: list[FAQEntry]) -> _Rows:
    """Rows language-major, grouped by entry inside each language (blocks and segments rely on it)."""
    per_lang: dict[str, list[tuple[int, bool, str]]] = {lang: [] for lang in LANGUAGES}
    for e, entry in enumerate(entries):
        for key, phrasings in entry.questions.items():
            for text in phrasings:
                if text.strip():
                    per_lang[_row_language(key, text)].append((e, False, text))
        for key, text in entry.answers.items():
            if ANSWER_WEIGHT > 0 and text.strip():
                per_lang[_row_language(key, text)].append((e, True, text))
    items = [row for lang in LANGUAGES for row in sorted(per_lang[lang], key=lambda r: (r[0], r[1]))]
    languages = [lang for lang in LANGUAGES for _ in per_lang[lang]]
    return _Rows(
        entry=np.array([r[0] for r in items], dtype=np.int32),
        language=languages,
        is_answer=np.array([r[1] for r in items], dtype=bool),
        text=[r[2] for r in items],
    )


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
    ) -> None:
        self._entry_list = entry_list
        self.entries: dict[str, FAQEntry] = {e.id: e for e in entry_list}
        self._rows = rows
        self._index = vectors
        self._lexical = lexical
        self.calibrations = calibrations
        self._embedder = embedder
        n = vectors.ntotal
        self._vectors = (
            faiss.rev_swig_ptr(vectors.get_xb(), n * vectors.d).reshape(n, vectors.d)
            if n
            else np.zeros((0, vectors.d), dtype=np.float32)
        )

    def __len__(self) -> int:
        return len(self._entry_list)

    # ---------------------------------------------------------------- build

    @classmethod
    def build(
        cls, entries: list[FAQEntry], embedder: Embedder, progress: Progress | None = None
    ) -> FAQIndex:
        """Embed every row, index it densely and lexically, and fit the score calibration.

        `progress(done, total)` is called as rows are embedded (embedding is nearly all of the cost).
        """
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"FAQ ids must be unique; repeated: {', '.join(dupes)}")
        entry_list = list(entries)
        rows = _layout(entry_list)
        vectors = np.zeros((len(rows), embedder.dim), dtype=np.float32)
        for start in range(0, len(rows), EMBED_BATCH):
            batch = rows.text[start : start + EMBED_BATCH]
            vectors[start : start + len(batch)] = embedder.encode(batch)
            if progress:
                progress(start + len(batch), len(rows))
        index = faiss.IndexFlatIP(embedder.dim)
        if len(rows):
            index.add(vectors)
        lexical = BM25.build([analyze(t) for t in rows.text])
        self = cls(entry_list, rows, index, lexical, {}, embedder)
        self.calibrations = {lang: self._fit_calibration(lang) for lang in LANGUAGES}
        return self

    def _fit_calibration(self, lang: str) -> Calibration:
        """Leave-one-phrasing-out features for `lang`'s question rows → `calibration.fit`."""
        rows = self._rows
        start, end = rows.blocks[lang]
        queries = np.flatnonzero(~rows.is_answer[start:end]) + start
        if len(queries) > calibration.MAX_QUERIES:
            rng = np.random.default_rng(0)
            queries = np.sort(rng.choice(queries, calibration.MAX_QUERIES, replace=False))
        if len(self._entry_list) < 2 or not len(queries):
            return calibration.fit(np.zeros((0, 2)), np.zeros(0), lang)
        features: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        start_prior = calibration.prior(lang)
        for chunk in np.array_split(queries, max(1, len(queries) // 256)):
            dense, lex = self._entry_features_loo(lang, chunk)
            own = rows.entry[chunk]
            logits = start_prior.logit(dense, lex)
            logits[np.arange(len(chunk)), own] = -np.inf
            n_neg = min(calibration.NEGATIVES_PER_QUERY, len(self._entry_list) - 1)
            negatives = np.argpartition(-logits, n_neg - 1, axis=1)[:, :n_neg]
            take = np.concatenate([own[:, None], negatives], axis=1)
            picked = np.stack(
                [np.take_along_axis(dense, take, 1), np.take_along_axis(lex, take, 1)], axis=-1
            )
            features.append(picked.reshape(-1, 2))
            label = np.zeros(take.shape)
            label[:, 0] = 1
            labels.append(label.reshape(-1))
        return calibration.fit(np.concatenate(features), np.concatenate(labels), lang)

    def _entry_features_loo(self, lang: str, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dense, lexical) of each query row against every entry, with the query row itself removed."""
        rows = self._rows
        n_entries = len(self._entry_list)
        # dense, within the language block
        start, end = rows.blocks[lang]
        sims = self._vectors[queries] @ self._vectors[start:end].T
        sims[np.arange(len(queries)), queries - start] = -np.inf
        sims = np.clip(sims, 0.0, 1.0) * rows.weight[start:end]
        dense = np.zeros((len(queries), n_entries), dtype=np.float32)
        seg_entries, seg_starts = rows.segments[lang]
        dense[:, seg_entries] = np.maximum.reduceat(sims, seg_starts - start, axis=1)
        # lexical, over all rows
        terms = [analyze(rows.text[q]) for q in queries]
        raw = np.zeros((len(queries), len(rows)), dtype=np.float32)
        for i, t in enumerate(terms):
            if t:
                raw[i] = self._lexical.scores(t) / max(self._lexical.self_score(t), 1e-6)
        raw[np.arange(len(queries)), queries] = 0.0
        raw = np.minimum(raw, 1.0) * rows.weight
        lex = np.zeros((len(queries), n_entries), dtype=np.float32)
        for block in LANGUAGES:
            b_start, b_end = rows.blocks[block]
            if b_end == b_start:
                continue
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
        if not text.strip() or not len(self._rows) or k <= 0:
            return []
        if query_vector is None:
            query_vector = self._embedder.encode([text])[0]
        return self._search(text, language, k, self._check_vector(query_vector))

    def search_batch(
        self,
        texts: list[str],
        languages: list[str],
        k: int = 3,
        query_vectors: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> list[list[FAQHit]]:
        """`search` for many messages, embedding the ones without a vector in one model call."""
        if len(languages) != len(texts):
            raise ValueError("search_batch needs one language per text")
        vectors: list[np.ndarray | None] = (
            [None] * len(texts) if query_vectors is None else list(query_vectors)
        )
        if len(vectors) != len(texts):
            raise ValueError("search_batch needs one query vector per text (or none at all)")
        missing = [i for i, v in enumerate(vectors) if v is None and texts[i].strip()]
        if missing and len(self._rows):
            for i, v in zip(missing, self._embedder.encode([texts[i] for i in missing]), strict=True):
                vectors[i] = v
        return [
            self.search(t, lang, k, v) if v is not None else []
            for t, lang, v in zip(texts, languages, vectors, strict=True)
        ]

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self._index.d:
            raise ValueError(f"query vector has {vector.shape[0]} dimensions; the FAQ index has {self._index.d}")
        return vector

    def _search(self, text: str, language: str, k: int, vector: np.ndarray) -> list[FAQHit]:
        rows = self._rows
        lang = query_language(language, text)
        start, end = rows.blocks[lang]
        # dense candidates: top rows of the query's language
        dense_by_entry: dict[int, float] = {}
        if end > start:
            params = faiss.SearchParameters(sel=faiss.IDSelectorRange(start, end))
            n = min(CANDIDATES, end - start)
            sims, ids = self._index.search(vector[None, :], n, params=params)
            for sim, row in zip(sims[0], ids[0], strict=True):
                if row >= 0:
                    entry = int(rows.entry[row])
                    value = max(0.0, float(sim)) * float(rows.weight[row])
                    if value > dense_by_entry.get(entry, -1.0):
                        dense_by_entry[entry] = value
        # lexical candidates: rows with any term in common, best first
        terms = analyze(text)
        lex_rows = self._lexical.normalised_scores(terms) * rows.weight if terms else None
        lex_by_entry: dict[int, float] = {}
        if lex_rows is not None:
            hit_rows = np.flatnonzero(lex_rows)
            if len(hit_rows) > CANDIDATES:
                hit_rows = hit_rows[np.argpartition(-lex_rows[hit_rows], CANDIDATES - 1)[:CANDIDATES]]
            for row in hit_rows:
                entry = int(rows.entry[row])
                lex_by_entry[entry] = max(lex_by_entry.get(entry, 0.0), float(lex_rows[row]))
        candidates = sorted(set(dense_by_entry) | set(lex_by_entry))
        if not candidates:
            return []
        # exact components for every candidate (a lexical-only candidate still has a dense score, and
        # an entry's best lexical row may lie outside the lexical top rows)
        dense = np.zeros(len(candidates), dtype=np.float32)
        lexical = np.zeros(len(candidates), dtype=np.float32)
        best_rows: list[int] = []
        calib = self.calibrations.get(lang) or calibration.prior(lang)
        for i, entry in enumerate(candidates):
            own = self._rows_of_entry(entry)
            row_lex = lex_rows[own] if lex_rows is not None else np.zeros(len(own), np.float32)
            lexical[i] = float(row_lex.max()) if len(own) else 0.0
            in_lang = self._rows_of(lang, entry)
            row_dense = np.zeros(len(own), dtype=np.float32)
            if in_lang.stop > in_lang.start:
                sims = np.clip(self._vectors[in_lang] @ vector, 0.0, 1.0) * rows.weight[in_lang]
                dense[i] = float(sims.max())
                row_dense[np.searchsorted(own, np.arange(in_lang.start, in_lang.stop))] = sims
            best_rows.append(self._best_question(own, calib.logit(row_dense, row_lex)))
        scores = calib.score(dense, lexical)
        order = np.argsort(-scores, kind="stable")[:k]
        hits = []
        for i in order:
            entry = self._entry_list[candidates[i]]
            hits.append(
                FAQHit(
                    id=entry.id,
                    score=round(float(scores[i]), 4),
                    answer=entry.answer(lang),
                    question=rows.text[best_rows[i]] if best_rows[i] >= 0 else "",
                    category=entry.category,
                    dense=round(float(dense[i]), 4),
                    lexical=round(float(lexical[i]), 4),
                )
            )
        return hits

    def _rows_of(self, lang: str, entry: int) -> slice:
        return self._rows.rows_of(lang, entry)

    def _rows_of_entry(self, entry: int) -> np.ndarray:
        """All rows of `entry`, ascending (one slice per language block)."""
        parts = [self._rows_of(lang, entry) for lang in LANGUAGES]
        return np.concatenate([np.arange(s.start, s.stop) for s in parts])

    def _best_question(self, own: np.ndarray, row_logits: np.ndarray) -> int:
        """The question phrasing (not the answer) with the highest row-level logit."""
        is_question = ~self._rows.is_answer[own]
        if not is_question.any():
            return -1
        candidates = own[is_question]
        return int(candidates[int(np.argmax(np.asarray(row_logits)[is_question]))])

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
        _atomic_write(vectors_path, lambda p: faiss.write_index(self._index, str(p)))
        lexical_path = directory / LEXICAL_FILE
        _atomic_write(lexical_path, lambda p: _save_npz(p, self._lexical.to_arrays()))
        manifest = {
            "format": FORMAT_VERSION,
            "analyzer": ANALYZER_VERSION,
            "answer_weight": ANSWER_WEIGHT,
            "embedding_model": getattr(self._embedder, "model_name", None),
            "dim": int(self._index.d),
            "files": {VECTORS_FILE: _sha256(vectors_path), LEXICAL_FILE: _sha256(lexical_path)},
            "calibration": {lang: c.as_dict() for lang, c in self.calibrations.items()},
            "entries": [{**e.as_dict(), "source": e.source} for e in self._entry_list],
            "rows": self._rows.as_dict(),
        }
        _atomic_write(
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
        if manifest.get("analyzer") != ANALYZER_VERSION or manifest.get("answer_weight") != ANSWER_WEIGHT:
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
        except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:
            raise FAQIndexError(f"FAQ index in {directory} is unreadable ({exc}); run `kefu train`") from None
        if not isinstance(vectors, faiss.IndexFlatIP) or vectors.ntotal != len(rows) or (
            lexical.n_docs != len(rows)
        ):
            raise FAQIndexError(f"FAQ index in {directory} is inconsistent (row counts differ); run `kefu train`")
        return cls(entries, rows, vectors, lexical, calibrations, embedder)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a temporary sibling, fsync, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
