"""Handoff queue figures on SQLite and Redis: assignment latency, and a crowd of waiting shoppers.

    .venv/bin/python benchmarks/bench_queue.py [--waiting 200] [--agents 10] [--capacity 3] [--redis-url URL]

Without --redis-url a throw-away redis-server is started on a free port (if installed). The handoff service is
driven the way the message path drives it (request() inside the conversation's lock, then append), without the
NLU model, so the figures are the queue's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.stores import Stores, create_stores
from handoff.service import HandoffService
from handoff.settings import HandoffSettings


async def ask(service: HandoffService, stores: Stores, cid: str) -> list[ev.Event]:
    """A shopper's "转人工" turn: handoff_requested, then what the queue answers, stored under the lock."""
    async with stores.trackers.lock(cid):
        tracker = Tracker(cid)
        user = ev.user("转人工", {"language": "zh"}, "rest")
        requested = ev.handoff_requested("explicit_request", [], "zh")
        tracker.apply(user)
        tracker.apply(requested)
        follow = await service.request(tracker, requested)
        return await stores.trackers.append(cid, [user, requested, *follow])


async def bench(stores: Stores, waiting: int, agents: int, capacity: int) -> dict[str, float]:
    settings = HandoffSettings(hours={"daily": "24h"}, no_answer_timeout_s=3600)
    service = HandoffService(stores, settings)
    figures: dict[str, float] = {}
    for i in range(agents):
        await service.agents.add(f"agent{i}", "benchmark-pw", capacity=capacity)

    # 1. assignment latency: a free agent is online, the shopper asks
    await service.agents.set_status("agent0", "online")
    samples = []
    for i in range(30):
        started = time.perf_counter()
        stored = await ask(service, stores, f"lat-{i}")
        samples.append(time.perf_counter() - started)
        assert stored[-1]["event"] == ev.AGENT_ASSIGNED, stored[-1]
        for record in await service.records.open():  # free the slot again
            await service.queue.close(record.conversation_id, await service.agents.get("agent0"), "resolved")
    figures["assign_latency_ms_median"] = statistics.median(samples) * 1000
    figures["assign_latency_ms_p95"] = sorted(samples)[int(len(samples) * 0.95) - 1] * 1000

    # 1b. the same through the background loop: the shopper waits, an agent comes online
    await service.agents.set_status("agent0", "away")
    await ask(service, stores, "via-loop")
    service.start()
    async with stores.bus.subscribe() as subscription:
        started = time.perf_counter()
        await service.roster.set_status(await service.agents.get("agent0"), "online")
        while True:
            item = await subscription.get(10)
            assert item is not None, "no assignment"
            if item[1]["event"] == ev.AGENT_ASSIGNED:
                break
        figures["assign_latency_via_loop_ms"] = (time.perf_counter() - started) * 1000
    await service.stop()
    for record in await service.records.open():
        await service.queue.close(record.conversation_id, await service.agents.get(record.agent or ""), "resolved")
    for i in range(agents):
        await service.agents.set_status(f"agent{i}", "away")  # on duty, not taking chats: everyone queues

    # 2. a crowd: enqueue, move everyone up by one, drain with all agents online
    started = time.perf_counter()
    for i in range(waiting):
        await ask(service, stores, f"crowd-{i:04d}")
    figures["enqueue_total_s"] = time.perf_counter() - started
    figures["enqueue_per_shopper_ms"] = figures["enqueue_total_s"] / waiting * 1000

    async with stores.trackers.lock("crowd-0000"):  # the first shopper leaves: everyone behind moves up
        await service.queue.leave("crowd-0000")
    started = time.perf_counter()
    await service.housekeeper.reposition()
    figures["reposition_s"] = time.perf_counter() - started

    for i in range(agents):
        await service.agents.set_status(f"agent{i}", "online")
    announcements_before = await _count_queued(stores, waiting)
    started = time.perf_counter()
    rounds = 0
    while await service.records.waiting():
        rounds += 1
        await service.housekeeper.housekeeping()  # assigns every free slot, tells the rest their new place
        for record in [r for r in await service.records.open() if r.state == "assigned"]:
            account = await service.agents.get(record.agent or "")
            await service.queue.close(record.conversation_id, account, "resolved")
    figures["drain_total_s"] = time.perf_counter() - started
    figures["drain_rounds"] = rounds
    figures["queued_events_while_draining"] = await _count_queued(stores, waiting) - announcements_before
    return figures


async def _count_queued(stores: Stores, waiting: int) -> int:
    total = 0
    for i in range(waiting):
        total += sum(e["event"] == ev.QUEUED for e in await stores.trackers.events(f"crowd-{i:04d}"))
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, default=200)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--capacity", type=int, default=3)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()

    redis_url, redis_proc = args.redis_url, None
    if redis_url is None and shutil.which("redis-server"):
        port = _free_port()
        redis_proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL)
        redis_url = f"redis://127.0.0.1:{port}/0"
        await asyncio.sleep(0.3)
    print(f"{args.waiting} waiting shoppers, {args.agents} agents × capacity {args.capacity}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            backends = [("sqlite", None)] + ([("redis", redis_url)] if redis_url else [])
            for name, url in backends:
                stores = create_stores(url, Path(tmp) / "bench.db", redis_prefix=f"bench-{uuid4().hex[:8]}:")
                try:
                    figures = await bench(stores, args.waiting, args.agents, args.capacity)
                finally:
                    await stores.close()
                print(f"\n[{name}]")
                for key, value in figures.items():
                    print(f"  {key:32} {value:10.2f}" if isinstance(value, float) else f"  {key:32} {value:10}")
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
