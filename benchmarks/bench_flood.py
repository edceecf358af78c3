"""One client floods the REST channel; do the other shoppers notice? (issue 14, "Limits hold under abuse")

One `kefu run` (SQLite, default limits). Normal shoppers: N conversations, each from its own address
(127.0.1.x), closed loop (the next message when the answer is back), measured alone, then again while one client
(127.0.2.1) sends FLOOD messages over C connections as fast as it can. Prints p50/p99 of both, their ratio
against the target (others' p99 within 2x of normal) and what the flood got (200 / 429 / errors).

The normal shoppers' addresses are in KEFU_RATE_LIMIT_EXEMPT, as a load test's are: a closed loop sends faster
than a shopper types, and what is measured is the flood's effect on them, not their own limits. The flood is not
exempt. Run: `.venv/bin/python benchmarks/bench_flood.py [--model M] [--flood 10000] [--connections 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from bench_server import QUESTIONS, free_port, percentile, wait_ready

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
NORMAL_NET, FLOOD_ADDRESS = "127.0.1.0/24", "127.0.2.1"


def newest_model() -> Path | None:
    found = sorted((ROOT / "models").glob("*.tar.gz"))
    if found:
        return found[-1]
    reuse = os.environ.get("KEFU_TEST_MODEL")
    return Path(reuse) if reuse else None


class Shoppers:
    """N conversations in a closed loop until stopped; latency (ms) of every answered message."""

    def __init__(self, url: str, conversations: int) -> None:
        self.url = url
        self.conversations = conversations
        self.timings: list[float] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._one(n) for n in range(self.conversations)))

    async def _one(self, n: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, local_addr=(f"127.0.1.{n + 1}", 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            turn = 0
            while not self.stop.is_set():
                turn += 1
                text = f"{random.choice(QUESTIONS)} {n}-{turn}"
                started = time.perf_counter()
                try:
                    async with session.post(self.url + "/webhooks/rest/webhook",
                                            json={"sender": f"shopper-{n}", "message": text}) as resp:
                        await resp.read()
                        status = resp.status
                except aiohttp.ClientError as exc:
                    self.failures[type(exc).__name__] += 1
                    continue
                if status == 200:
                    self.timings.append((time.perf_counter() - started) * 1000)
                else:
                    self.failures[str(status)] += 1

    def measure(self) -> tuple[int, float, float]:
        return len(self.timings), percentile(self.timings, 50), percentile(self.timings, 99)


async def flood(url: str, total: int, connections: int) -> tuple[collections.Counter[str], float]:
    """`total` messages from one address over `connections` connections, each a new conversation. Runs in its own
    process (`--flood-only`), as an attacker would, so its client work does not stall the shoppers' event loop."""
    statuses: collections.Counter[str] = collections.Counter()
    left = iter(range(total))
    connector = aiohttp.TCPConnector(limit=connections, local_addr=(FLOOD_ADDRESS, 0))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            for n in left:
                try:
                    async with session.post(url + "/webhooks/rest/webhook",
                                            json={"sender": f"flood-{n}", "message": "hello"}) as resp:
                        await resp.read()
                        statuses[str(resp.status)] += 1
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(connections)))
    return statuses, time.perf_counter() - started


async def flood_process(url: str, total: int, connections: int) -> tuple[collections.Counter[str], float]:
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--flood-only", url, "--flood", str(total),
                                                "--connections", str(connections), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    result = json.loads(out)
    return collections.Counter(result["statuses"]), result["seconds"]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def phase(url: str, conversations: int, seconds: float | None, flood_args: tuple[int, int] | None):
    shoppers = Shoppers(url, conversations)
    running = asyncio.get_running_loop().create_task(shoppers.run())
    flooded: tuple[collections.Counter[str], float] | None = None
    if flood_args:
        flooded = await flood_process(url, *flood_args)
    else:
        await asyncio.sleep(seconds or 0)
    shoppers.stop.set()
    await running
    return shoppers, flooded


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="model archive (default: newest in models/)")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--flood", type=int, default=10_000, help="messages the flooding client sends")
    parser.add_argument("--connections", type=int, default=64, help="the flooding client's connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the normal load is measured alone")
    parser.add_argument("--flood-only", metavar="URL", help=argparse.SUPPRESS)  # the flooding process
    args = parser.parse_args()
    if args.flood_only:
        statuses, seconds = await flood(args.flood_only, args.flood, args.connections)
        print(json.dumps({"statuses": statuses, "seconds": seconds}))
        return
    model = args.model or newest_model()
    if model is None or not model.exists():
        sys.exit("no model: run `kefu train` (or pass --model)")
    random.seed(7)
    tmp = Path(tempfile.mkdtemp(prefix="kefu-flood-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # this checkout's code (the venv's `kefu` may be installed from another one)
    env = {**os.environ, "REDIS_URL": "", "KEFU_RATE_LIMIT_EXEMPT": NORMAL_NET, "PYTHONPATH": str(ROOT)}
    for name in ("REST_CLIENT_PER_MINUTE", "REST_CLIENT_BURST", "REST_CONVERSATION_PER_MINUTE",
                 "REST_CONVERSATION_BURST", "KEFU_TRUSTED_PROXIES"):
        env.pop(name, None)  # the defaults are what is measured
    shutil.copytree(ROOT / "actions", tmp / "actions", dirs_exist_ok=True)
    shutil.copytree(ROOT / "data", tmp / "data", dirs_exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--port", str(port), "--model", str(model)],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(url, proc)
        await phase(url, args.conversations, 5.0, None)  # warm-up
        cpu_before = cpu_s(proc.pid)
        alone, _ = await phase(url, args.conversations, args.seconds, None)
        cpu_alone = cpu_s(proc.pid) - cpu_before
        during, flooded = await phase(url, args.conversations, None, (args.flood, args.connections))
        cpu_during = cpu_s(proc.pid) - cpu_before - cpu_alone
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)

    assert flooded is not None
    statuses, flood_s = flooded
    n1, a50, a99 = alone.measure()
    n2, d50, d99 = during.measure()
    ratio = d99 / a99
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; SQLite, default limits")
    print(f"normal: {args.conversations} conversations, closed loop, each from its own address")
    print(f"  alone          p50 {a50:7.1f} ms  p99 {a99:7.1f} ms  ({n1} messages in {args.seconds:g} s; "
          f"failures {dict(alone.failures) or 0}; server CPU {cpu_alone:.1f} s)")
    print(f"  during flood   p50 {d50:7.1f} ms  p99 {d99:7.1f} ms  ({n2} messages in {flood_s:.1f} s; "
          f"failures {dict(during.failures) or 0}; server CPU {cpu_during:.1f} s)")
    print(f"flood: {args.flood} messages from one address over {args.connections} connections in {flood_s:.1f} s "
          f"({args.flood / flood_s:.0f}/s): {dict(sorted(statuses.items()))}")
    verdict = "OK" if ratio <= TARGET_RATIO else "MISS"
    print(f"p99 ratio {ratio:.2f}x (p50 {d50 / a50:.2f}x)   {verdict} (target: others' latency within "
          f"{TARGET_RATIO:g}x of normal)")


if __name__ == "__main__":
    asyncio.run(main())
