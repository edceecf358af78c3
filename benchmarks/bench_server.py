"""Speed and memory of the starter bot, measured the way a shop would feel them.

Prints: training time, server RSS after start-up, /model/parse latency one request at a time, and REST turn
latency with N concurrent conversations — each compared with its target. Run: `make bench` or
`.venv/bin/python benchmarks/bench_server.py [--conversations 50] [--turns 8]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
KEFU = str(Path(sys.executable).parent / "kefu")
TARGETS = {"parse_p50_ms": 10.0, "turn_p99_ms": 50.0, "train_s": 60.0}

QUESTIONS = [
    "how long does shipping take", "what does delivery cost", "can I return this", "when do I get my refund",
    "which payment methods do you accept", "do you ship abroad", "do you price match", "can I get an invoice",
    "what are your opening hours", "hello", "thanks a lot", "where is my order KF20240001", "are you a robot",
    "快递几天能到", "运费多少钱", "可以退货吗", "退款多久到账", "支持哪些付款方式", "能开发票吗", "你们几点上班",
    "你好", "谢谢", "我的订单到哪了", "你是机器人吗", "shipping fee to Shanghai?", "退货要几天 refund",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM them all, then wait for each; one still running after `timeout` seconds is killed."""
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train(out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([KEFU, "train", "--force", "--out", str(out)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    async with aiohttp.ClientSession() as session:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            try:
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("server did not start")


async def bench_parse(url: str, n: int) -> list[float]:
    timings = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            text = f"{random.choice(QUESTIONS)} {i}"  # unique text: no cache hits
            started = time.perf_counter()
            async with session.post(url + "/model/parse", json={"text": text}) as resp:
                await resp.read()
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def bench_turns(url: str, conversations: int, turns: int, think_s: float = 0.0) -> tuple[list[float], float]:
    """Each conversation sends `turns` messages one after the other, pausing ~think_s between them (0: flat out)."""
    timings: list[float] = []
    connector = aiohttp.TCPConnector(limit=conversations)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(cid: int) -> None:
            for turn in range(turns):
                if think_s:
                    await asyncio.sleep(random.uniform(0.5, 1.5) * think_s)
                text = f"{random.choice(QUESTIONS)} {cid}-{turn}"
                started = time.perf_counter()
                async with session.post(url + "/webhooks/rest/webhook",
                                        json={"sender": f"bench-{cid}", "message": text}) as resp:
                    await resp.read()
                    assert resp.status == 200
                timings.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in range(conversations)))
        elapsed = time.perf_counter() - started
    return timings, len(timings) / elapsed


def verdict(value: float, target: float) -> str:
    return f"{'OK ' if value <= target else 'MISS'} (target ≤ {target:g})"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--parse-requests", type=int, default=300)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a shopper takes between messages")
    args = parser.parse_args()
    random.seed(7)
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    try:
        train_s = train(tmp / "models")
        model = next((tmp / "models").glob("*.tar.gz"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "REDIS_URL": "", "KEFU_RATE_LIMIT_EXEMPT": "127.0.0.0/8"}  # a load test: no limits
        shutil.copytree(ROOT / "actions", tmp / "actions", dirs_exist_ok=True)  # custom actions and their
        shutil.copytree(ROOT / "data", tmp / "data", dirs_exist_ok=True)  # demo shop data, not the project db
        proc = subprocess.Popen([KEFU, "run", "--port", str(port), "--model", str(model)], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            started = time.perf_counter()
            await wait_ready(url, proc)
            startup_s = time.perf_counter() - started
            rss_start = rss_mb(proc.pid)
            await bench_parse(url, 20)  # warm-up
            parse = await bench_parse(url, args.parse_requests)
            paced, paced_rate = await bench_turns(url, args.conversations, args.turns, think_s=args.think)
            turns, throughput = await bench_turns(url, args.conversations, args.turns)
            rss_after = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(f"train starter bot           {train_s:7.1f} s    {verdict(train_s, TARGETS['train_s'])}")
    print(f"server start-up             {startup_s:7.1f} s")
    print(f"server RSS after start-up   {rss_start:7.0f} MB")
    print(f"server RSS after load       {rss_after:7.0f} MB")
    p50, p99 = percentile(parse, 50), percentile(parse, 99)
    print(f"/model/parse, 1 at a time   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  mean {statistics.mean(parse):.1f} ms"
          f"   p50 {verdict(p50, TARGETS['parse_p50_ms'])}")
    t50, t99 = percentile(paced, 50), percentile(paced, 99)
    print(f"REST turn, {args.conversations} conversations, one message each ~{args.think:g} s: "
          f"p50 {t50:6.1f} ms  p99 {t99:6.1f} ms  ({paced_rate:.0f} msg/s)   "
          f"p99 {verdict(t99, TARGETS['turn_p99_ms'])}")
    s50, s99 = percentile(turns, 50), percentile(turns, 99)
    print(f"REST turn, {args.conversations} conversations flat out (no pause): p50 {s50:6.1f} ms  p99 {s99:6.1f} ms  "
          f"capacity {throughput:.0f} msg/s")


if __name__ == "__main__":
    asyncio.run(main())
