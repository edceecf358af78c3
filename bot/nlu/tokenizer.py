"""Tokens the way Rasa's spaCy tokenizer makes them: spaCy blank English, or blank Chinese with jieba.

The two spaCy objects are built once per process (building the Chinese one loads jieba's dictionary, ~1 s)
and only read afterwards, so concurrent calls are safe.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from typing import Any

_nlp: dict[str, Any] = {}
_lock = threading.Lock()
TOKENS_KEPT = 4096  # texts whose tokens are remembered
_recent: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
_recent_lock = threading.Lock()


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
    language = _pipeline_language(language)
    nlp = _nlp.get(language)
    if nlp is None:
        with _lock:
            nlp = _nlp.get(language)
            if nlp is None:
                nlp = _nlp[language] = _build(language)
    return nlp


def make_doc(text: str, language: str) -> Any:
    """A spaCy Doc (tokenised only: blank pipelines have no trained components). Its tokens are remembered for
    `tokenize`: the NLU makes a message's Doc (its entity ruler needs one), and the FAQ's entry selector then reads
    the same tokens without running jieba, the slow part, again."""
    doc = get_nlp(language).make_doc(text)
    tokens = words(doc)
    key = (text, _pipeline_language(language))
    with _recent_lock:
        _recent[key] = tokens
        _recent.move_to_end(key)
        if len(_recent) > TOKENS_KEPT:
            _recent.popitem(last=False)
    return doc


def tokenize(text: str, language: str) -> list[str]:
    """Token texts without whitespace tokens, e.g. ["退货", "要", "几天"] or ["where", "'s", "my", "order"]."""
    key = (text, _pipeline_language(language))
    with _recent_lock:
        tokens = _recent.get(key)
    return list(tokens if tokens is not None else words(make_doc(text, language)))


def words(doc: Any) -> tuple[str, ...]:
    """A Doc's token texts, whitespace tokens left out."""
    return tuple(t.text for t in doc if not t.is_space)


def _pipeline_language(language: str) -> str:
    return "zh" if language == "zh" else "en"
