"""How soon open chat sockets catch up after Redis pub/sub drops: the time from every subscriber connection being
killed (`CLIENT KILL TYPE pubsub`, as a failover or a network blip does) to the bubble's rooms telling their
sockets to refill from the tracker store. Before, a socket caught up only with its conversation's next event.

    .venv/bin/python benchmarks/bench_bus_resume.py [--drops 20] [--redis-url URL]

Without --redis-url a throw-away redis-server is started on a unix socket.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from redis import asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.channels.widget.rooms import Rooms
from bot.dialogue import events as ev
from bot.stores import create_stores


class Socket:
    """Stands for an open chat socket in a room: notes when it is told to refill."""

    def __init__(self) -> None:
        self.resynced = asyncio.Event()

    def deliver(self, event: ev.Event) -> None:
        pass

    def resync(self) -> None:
        self.resynced.set()


async def bench(url: str, drops: int, tmp: Path) -> list[float]:
    stores = create_stores(url, tmp / "bench.db", redis_prefix=f"bench-{uuid4().hex[:8]}:")
    rooms, socket, admin = Rooms(stores.bus), Socket(), aioredis.from_url(url)
    rooms.join("web:bench", socket)
    await rooms.start()
    seconds = []
    try:
        for _ in range(drops):
            socket.resynced.clear()
            started = time.perf_counter()
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await asyncio.wait_for(socket.resynced.wait(), 60)
            seconds.append(time.perf_counter() - started)
    finally:
        await rooms.stop()
        await admin.aclose()
        await stores.close()
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    logging.getLogger("bot").setLevel(logging.ERROR)  # one warning per drop is the point, not the output
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = args.redis_url
        if url is None:
            sock = Path(tmp) / "redis.sock"
            server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", ""],
                                      stdout=subprocess.DEVNULL)
            url = f"unix://{sock}"
            while not sock.exists():
                await asyncio.sleep(0.05)
        try:
            seconds = sorted(await bench(url, args.drops, Path(tmp)))
        finally:
            if server is not None:
                server.terminate()
                server.wait()
    ms = [s * 1000 for s in seconds]
    print(f"{args.drops} pub/sub drops: sockets told to refill after p50 {statistics.median(ms):.0f} ms, "
          f"p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
