"""A writer process on the embedded store, for crash and backup tests: it appends events to seven conversations
(`c0`…`c6`, text `message N`) and writes a document `doc:N` per step, printing N only once both writes returned
(the acknowledgement a channel would give the shopper)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, sys
from bot.stores import create_stores

async def main(path, start):
    stores = create_stores(None, path)
    n = start
    while True:
        n += 1
        await stores.trackers.append(f"c{n % 7}", [{"event": "user", "text": f"message {n}"}])
        await stores.kv.set(f"doc:{n}", {"n": n, "padding": "x" * (n % 500)})
        print(n, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def document(n: int) -> dict:
    """What the writer stores as `doc:N`."""
    return {"n": n, "padding": "x" * (n % 500)}


class Writer:
    def __init__(self, db: Path, start: int = 0) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db), str(start)], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.acked: list[int] = []

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        """Until `count` more writes were acknowledged."""
        goal = len(self.acked) + count
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < goal:
            assert time.monotonic() < deadline, "the writer is too slow"
            line = self.process.stdout.readline()
            assert line, f"the writer stopped: {self.process.stderr.read()}"
            self.acked.append(int(line))

    def kill(self) -> list[int]:
        """SIGKILL, mid-stream; every step it acknowledged, those printed just before it died included."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        rest, _ = self.process.communicate(timeout=10)
        self.acked += [int(line) for line in rest.split()]
        assert self.process.returncode == -signal.SIGKILL
        return self.acked
