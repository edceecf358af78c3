"""Tokens the way Rasa's spaCy tokenizer makes them: spaCy blank English, or blank Chinese with jieba.

The two spaCy objects are built once per process (building the Chinese one loads jieba's dictionary, ~1 s)
and only read afterwards, so concurrent calls are safe.
"""

from __future__ import annotations

import logging
import sys
import threading
from functools import lru_cache
from typing import Any

_nlp: dict[str, Any] = {}
_lock = threading.Lock()


def _import_spacy() -> Any:
    """spaCy without torch: its thinc imports torch whenever torch is installed (~330 MB of memory and seconds of
    start-up), though blank pipelines never use it. A process that already has torch keeps it."""
    if "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


spacy = _import_spacy()  # at import, in the importing thread: no other thread sees `torch` missing meanwhile


def _build(language: str) -> Any:
    if language == "zh":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
        nlp("预热")  # jieba builds its prefix dictionary on first use; do it now, under the lock
        return nlp
    return spacy.blank("en")


def get_nlp(language: str) -> Any:
    """The cached blank spaCy pipeline for "zh" or "en" (anything else gets the English one)."""
    language = "zh" if language == "zh" else "en"
    nlp = _nlp.get(language)
    if nlp is None:
        with _lock:
            nlp = _nlp.get(language)
            if nlp is None:
                nlp = _nlp[language] = _build(language)
    return nlp


def make_doc(text: str, language: str) -> Any:
    """A spaCy Doc (tokenised only: blank pipelines have no trained components)."""
    return get_nlp(language).make_doc(text)


def tokenize(text: str, language: str) -> list[str]:
    """Token texts without whitespace tokens, e.g. ["退货", "要", "几天"] or ["where", "'s", "my", "order"]."""
    return list(_tokens(text, language))


@lru_cache(maxsize=4096)
def _tokens(text: str, language: str) -> tuple[str, ...]:
    """Remembered: the NLU and the FAQ's entry selector read the same message (and jieba is the slow part)."""
    return tuple(t.text for t in make_doc(text, language) if not t.is_space)
