"""Embedding a knowledge version's new texts without slowing the shoppers' answers.

A change of a few entries embeds a few dozen texts: about a second in the worker's builder thread, unnoticed.
A large one (an import of hundreds of entries) embeds thousands, minutes of CPU; in the worker it would compete
with the message path for the cores and, through the tokenisers and jieba (pure Python), for the GIL — answers
were 2–3× slower while a 1,000-entry version was built. So from `IN_PROCESS_BELOW` new texts on, they are
embedded and analysed in a process of its own, started for that build and ended after it, at nice 10: it gets
the CPU time the serving processes leave, and about a tenth of a core they keep busy (so a busy shop's
publication still finishes; SCHED_IDLE starved it under load). It loads the same encoders the worker uses, so
its vectors are the worker's. If it cannot start or dies (memory), the texts are embedded in the worker after
all: a version is never lost to its builder.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from bot.config import EmbeddingSettings
from bot.faq.index import Prepare, prepare_texts
from bot.nlu.embedder import Embedder

log = logging.getLogger(__name__)
NICENESS = 10  # CFS weight 110 against a serving process's 1024
IN_PROCESS_BELOW = 256  # fewer new texts embed in ~1 s: less than starting a process and loading the encoders

_embedder: Embedder | None = None  # the build process's own


def _start(settings_json: str) -> None:
    """In the build process: yield the CPU to the serving processes, then load the encoders."""
    os.nice(NICENESS)
    global _embedder
    _embedder = Embedder(EmbeddingSettings.model_validate_json(settings_json), cache_size=0)


def _prepare(texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    assert _embedder is not None, "the build process was not started by _start"
    return prepare_texts(_embedder, texts)


class Builder:
    """A version's new texts, embedded and analysed: here when they are few, else in a low-priority process.
    Blocking: call it from the worker's builder thread (FAQIndex.updated's `prepare`)."""

    def __init__(self, settings: EmbeddingSettings, here: Prepare, in_process_below: int = IN_PROCESS_BELOW) -> None:
        self.settings = settings
        self.here = here
        self.in_process_below = in_process_below
        self.last_in_process: bool | None = None  # where the last build embedded (for tests)

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        self.last_in_process = len(texts) < self.in_process_below
        if self.last_in_process:
            return self.here(texts)
        try:
            # spawn, not fork: the worker runs threads (and torch), which a forked child would inherit half-held
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_start, initargs=(self.settings.model_dump_json(),)) as pool:
                return pool.submit(_prepare, texts).result()
        except (BrokenProcessPool, OSError) as exc:
            log.warning("the build process failed (%s): embedding %d texts in this worker", exc, len(texts))
            self.last_in_process = True
            return self.here(texts)
