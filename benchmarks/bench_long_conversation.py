"""Does a turn cost the same at a conversation's 6,000th event as at its 100th, and does /health stay quick?

    .venv/bin/python benchmarks/bench_long_conversation.py [--model ARCHIVE] [--store sqlite|redis|both]
        [--levels 100,1000,6000] [--turns 25] [--health-s 8]

A real `kefu run` worker (this checkout's code) serves one conversation over the REST channel. The script grows
the conversation to each level by appending copies of its own real turns to the store (from this process, as a
second worker would), then times `--turns` REST messages at that level (turn p50/p99). Last, while the longest
conversation is being written flat out, it polls `/health` every 20 ms for `--health-s` seconds and prints the
p99 — the event loop must stay free — next to `/health` p99 while idle. `--store redis` starts a throw-away
redis-server. Model: `--model`, else $KEFU_TEST_MODEL, else one is trained.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_server import ROOT, free_port, percentile, wait_ready

from bot.stores import Stores, create_stores

# FAQ questions the starter bot answers itself (no form, no handoff), so every turn is a full bot turn.
MESSAGES = ["how long does shipping take", "what does delivery cost", "which payment methods do you accept",
            "do you ship abroad", "can I get an invoice", "快递几天能到", "运费多少钱", "支持哪些付款方式"]
CONVERSATION = "long-conversation"


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def send(session: aiohttp.ClientSession, url: str, text: str, i: int, sender: str = CONVERSATION) -> float:
    started = time.perf_counter()
    async with session.post(url + "/webhooks/rest/webhook", json={"sender": sender, "message": text},
                            headers={"X-Message-Id": f"m-{i}"}) as resp:
        body = await resp.json()
        if resp.status != 200 or not body:
            raise RuntimeError(f"{text!r} (turn {i}) answered {resp.status}: {body}")
    return (time.perf_counter() - started) * 1000


async def grow(stores: Stores, template: list[dict], target: int, counter: list[int]) -> int:
    """Append copies of real turns until the conversation holds `target` events; returns its length."""
    length = len(await stores.trackers.events(CONVERSATION))
    while length < target:
        batch = []
        for event in template:
            copy = {k: v for k, v in event.items() if k not in ("seq", "timestamp")}
            if copy.get("message_id"):
                counter[0] += 1
                copy["message_id"] = f"copy-{counter[0]}"
            batch.append(copy)
        stored = await stores.trackers.append(CONVERSATION, batch[: max(target - length, 1)])
        length = stored[-1]["seq"]
    return length


async def health_p99(session: aiohttp.ClientSession, url: str, seconds: float) -> tuple[float, int]:
    timings = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        async with session.get(url + "/health") as resp:
            await resp.read()
        timings.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    return percentile(timings, 99), len(timings)


async def bench_store(store: str, model: Path, levels: list[int], turns: int, health_s: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"kefu-long-{store}-"))
    redis = None
    proc = None
    try:
        redis_url = ""
        if store == "redis":
            redis, redis_url = start_redis(tmp)
        shutil.copytree(ROOT / "actions", tmp / "actions")
        shutil.copytree(ROOT / "data", tmp / "data")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--port", str(port), "--model", str(model)],
                                cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_ready(url, proc)
        stores = create_stores(redis_url or None, tmp / "kefu.db")
        results: dict = {"turn": {}}
        i = 0
        try:
            async with aiohttp.ClientSession() as session:
                for n, text in enumerate(MESSAGES):  # the worker's first turns are slower: not measured
                    await send(session, url, text, -1 - n, sender="warm-up")
                for text in MESSAGES[:4]:  # real turns to copy
                    await send(session, url, text, i)
                    i += 1
                template = [e for e in await stores.trackers.events(CONVERSATION)
                            if e.get("event") not in ("session_started",) and
                            e.get("name") != "action_session_start"]
                results["idle_health_p99"], _ = await health_p99(session, url, 2.0)
                counter = [0]
                for level in levels:
                    length = await grow(stores, template, level, counter)
                    for _ in range(2):  # warm-up: the worker sees what "the other worker" appended
                        await send(session, url, MESSAGES[i % len(MESSAGES)], i)
                        i += 1
                    timings = []
                    for _ in range(turns):
                        timings.append(await send(session, url, MESSAGES[i % len(MESSAGES)], i))
                        i += 1
                    results["turn"][level] = (length, percentile(timings, 50), percentile(timings, 99))
                stop = asyncio.Event()

                async def writer() -> int:
                    nonlocal i
                    sent = 0
                    while not stop.is_set():
                        await send(session, url, MESSAGES[i % len(MESSAGES)], i)
                        i += 1
                        sent += 1
                    return sent

                writing = asyncio.create_task(writer())
                await asyncio.sleep(0.5)
                results["busy_health_p99"], results["health_samples"] = await health_p99(session, url, health_s)
                stop.set()
                results["busy_turns"] = await writing
                results["final_length"] = len(await stores.trackers.events(CONVERSATION))
        finally:
            await stores.close()
        return results
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def find_model(given: Path | None) -> Path:
    if given:
        return given
    if os.environ.get("KEFU_TEST_MODEL"):
        return Path(os.environ["KEFU_TEST_MODEL"])
    out = Path(tempfile.mkdtemp(prefix="kefu-long-model-"))
    subprocess.run([sys.executable, "-m", "bot.cli", "train", "--out", str(out)], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    return next(out.glob("*.tar.gz"))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--store", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--levels", default="100,1000,6000")
    parser.add_argument("--turns", type=int, default=25)
    parser.add_argument("--health-s", type=float, default=8.0)
    args = parser.parse_args()
    model = find_model(args.model)
    levels = [int(n) for n in args.levels.split(",")]
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
    for store in (["sqlite", "redis"] if args.store == "both" else [args.store]):
        r = await bench_store(store, model, levels, args.turns, args.health_s)
        for level, (length, p50, p99) in r["turn"].items():
            print(f"{store:6}  turn at {level:>6,} events (has {length:,}): p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
        print(f"{store:6}  /health p99 idle {r['idle_health_p99']:6.1f} ms; while the conversation is written "
              f"({r['busy_turns']} turns, {r['health_samples']} probes, ends at {r['final_length']:,} events): "
              f"{r['busy_health_p99']:6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
