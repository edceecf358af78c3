"""How a serving process uses Python's garbage collector, set once everything it needs has loaded.

- **What start-up loaded is frozen** (`gc.freeze()`): the model, the stores and the channels live as long as the
  server, so full collections never scan them, and workers forked from a loaded supervisor never write to the
  pages they share with it (a collection writes to every object it scans).
- **Young collections are rarer** (`YOUNG_THRESHOLD` allocations instead of CPython's 700). Every young collection
  promotes what is alive at that moment — a request half-way through, a socket's heartbeat in flight — and a full
  collection comes once promotions reach a quarter of the old generation. Each idle chat socket is ~80 tracked
  objects, so at 10,000 sockets a full collection walks ~800,000 objects and takes 250–700 ms, a pause every
  request in flight waits through. With young collections 30 times rarer, most of what a request makes is freed
  before one comes: at 10,000 sockets under the REST load of `benchmarks/bench_sockets.py` REST p99 went from
  413 ms to 58–118 ms in five runs (docs/design.md). A young collection of 20,000 objects takes a few
  milliseconds; garbage in reference cycles waits a little longer to be freed.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # allocations (net of frees) between young collections; CPython's default is 700


def settle_for_serving() -> None:
    """Freeze what is loaded and space the young collections out; call once start-up is done, before a fork."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
