"""Soak: real `kefu run` workers under a closed loop of N concurrent conversations for a set time.

    .venv/bin/python benchmarks/load_soak.py [--project DIR] [--model ARCHIVE] [--conversations 50]
        [--minutes 3] [--store sqlite|redis] [--workers 1] [--sample-s 30] [--turns 10]

Each conversation sends a message, waits for the answer and sends the next one at once (closed loop), picked
at random from the project's own training phrasings (NLU examples and FAQ questions); a shopper told they may
leave a message takes the offer half the time (`--leave-message`), which makes tickets. After `--turns`
messages a conversation ends and a new shopper starts, so a long run meets as many new conversations as a busy
day. With `--store redis` a throw-away redis-server is started and the workers share it; requests go
round-robin to the workers, as a load balancer would send them. Every `--sample-s` seconds it prints
throughput, p50/p99 latency, errors and each worker's RSS, so `--minutes 30` shows whether memory stays flat.
At the end: the overall figures, the tickets made, the share of turns answered with one of the project's own
domain responses (for Rasa's moodbot: the moodbot answer share) and the error lines in the workers' logs (e.g.
a ticket number that could not be allocated).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_server import KEFU, ROOT, free_port, percentile, rss_mb, stop, wait_ready

from bot.formats.project import load_project

PROJECT_FILES = ("config.yml", "domain.yml", "endpoints.yml", "handoff.yml", "credentials.yml")
LOG_PROBLEMS = ("ERROR", "Traceback", "could not allocate", "MaxConnectionsError", "No connection available")


@dataclass
class Traffic:
    """What the shoppers say, and how to recognise an answer written in the project's domain."""

    messages: list[str]
    answers: set[str]

    @classmethod
    def of(cls, project: Path) -> Traffic:
        loaded = load_project(project / "config.yml", project / "domain.yml", [project / "data"])
        messages = [example.text for example in loaded.nlu.examples]
        messages += [q for entry in loaded.faq for questions in entry.questions.values() for q in questions]
        answers = {v["text"] for variations in loaded.domain.responses.values() for v in variations if v.get("text")}
        return cls(messages, answers)


@dataclass
class Tally:
    """Every request's outcome, kept for the whole run and per sampling interval."""

    latencies: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    turns: int = 0
    domain_answers: int = 0
    tickets: int = 0
    conversations: int = 0

    def record(self, seconds: float, error: str | None) -> None:
        if error:
            self.errors[error] += 1
            return
        self.latencies.append(seconds * 1000)
        self.window.append(seconds * 1000)


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_worker(workdir: Path, model: Path, redis_url: str, index: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (workdir / f"worker-{index}.log").open("wb")
    env = {**os.environ, "REDIS_URL": redis_url, "KEFU_RATE_LIMIT_EXEMPT": "127.0.0.0/8"}  # a load test: no limits
    proc = subprocess.Popen([KEFU, "run", "--port", str(port), "--model", str(model)], cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def next_message(traffic: Traffic, reply: object, leave_share: float) -> str:
    """A random phrasing, or "leave a message" ("留言") when the bot has just offered it and the shopper takes it."""
    texts = [m.get("text") or "" for m in reply] if isinstance(reply, list) else []
    if random.random() < leave_share:
        if any('"leave a message"' in t for t in texts):
            return "leave a message"
        if any("留言" in t for t in texts):
            return "留言"
    return random.choice(traffic.messages)


async def conversation(session: aiohttp.ClientSession, urls: list[str], traffic: Traffic, tally: Tally,
                       args: argparse.Namespace, deadline: float, counter: collections.Counter[str]) -> None:
    """One shopper after another on this slot, each sending `turns` messages back to back, until the deadline."""
    while time.monotonic() < deadline:
        tally.conversations += 1
        sender = f"soak-{tally.conversations}"
        body: object = None
        for _ in range(args.turns):
            if time.monotonic() >= deadline:
                return
            counter["sent"] += 1
            url = urls[counter["sent"] % len(urls)]
            started = time.perf_counter()
            error = None
            message = {"sender": sender, "message": next_message(traffic, body, args.leave_message)}
            try:
                async with session.post(url + "/webhooks/rest/webhook", json=message) as resp:
                    body = await resp.json(content_type=None) if resp.status == 200 else await resp.text()
                    if resp.status != 200:
                        error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, body = type(exc).__name__, None
            tally.record(time.perf_counter() - started, error)
            if error is None and isinstance(body, list):
                tally.turns += 1
                tally.domain_answers += any(m.get("text") in traffic.answers for m in body)
                tally.tickets += any(m.get("handoff") == "ticket_created" for m in body)


async def report(tally: Tally, workers: list[subprocess.Popen], interval: float, deadline: float) -> None:
    started = time.monotonic()
    print(f"{'min':>5} {'msg/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  RSS MB per worker", flush=True)
    while time.monotonic() < deadline:
        await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0.1)))
        window, tally.window = tally.window, []
        rates = len(window) / interval
        p50 = percentile(window, 50) if window else float("nan")
        p99 = percentile(window, 99) if window else float("nan")
        rss = "  ".join(f"{rss_mb(w.pid):6.0f}" for w in workers)
        print(f"{(time.monotonic() - started) / 60:5.1f} {rates:7.1f} {p50:8.1f} {p99:8.1f} "
              f"{sum(tally.errors.values()):7d}  {rss}", flush=True)


def log_problems(workdir: Path) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for log in sorted(workdir.glob("worker-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            for problem in LOG_PROBLEMS:
                if problem in line:
                    found[problem] += 1
    return found


def copy_project(project: Path, workdir: Path) -> None:
    """The bot's files without its database or models: every run starts from empty stores."""
    for name in PROJECT_FILES:
        if (project / name).exists():
            shutil.copy2(project / name, workdir / name)
    for folder in ("actions", "data"):
        if (project / folder).is_dir():
            shutil.copytree(project / folder, workdir / folder, ignore=shutil.ignore_patterns("__pycache__"))


def train(project: Path, out: Path) -> Path:
    subprocess.run([KEFU, "train", "--force", "--out", str(out)], cwd=project, check=True, stdout=subprocess.DEVNULL)
    return next(out.glob("*.tar.gz"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="a bot's folder (default: the starter shop)")
    parser.add_argument("--model", type=Path, help="a trained archive of that bot (default: train one)")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="more than one needs --store redis")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--turns", type=int, default=10, help="messages per conversation")
    parser.add_argument("--leave-message", type=float, default=0.5, help="share of offers to leave a message taken")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    if args.workers > 1 and args.store != "redis":
        parser.error("several workers share conversations only through Redis: add --store redis")
    random.seed(args.seed)
    project = args.project.resolve()
    traffic = Traffic.of(project)
    workdir = Path(tempfile.mkdtemp(prefix="kefu-soak-"))
    processes: list[subprocess.Popen] = []
    try:
        copy_project(project, workdir)
        model = args.model.resolve() if args.model else train(workdir, workdir / "models")
        redis_url = ""
        if args.store == "redis":
            redis, redis_url = start_redis(workdir)
            processes.append(redis)
        workers, urls = [], []
        for index in range(args.workers):
            worker, url = start_worker(workdir, model, redis_url, index)
            workers.append(worker)
            processes.append(worker)
            urls.append(url)
        for index, (worker, url) in enumerate(zip(workers, urls, strict=True)):
            try:
                await wait_ready(url, worker)
            except RuntimeError:
                sys.exit(f"worker {index} did not start:\n" + (workdir / f"worker-{index}.log").read_text()[-3000:])
        print(f"{project.name or 'kefu'}: {args.conversations} conversations × {args.turns} turns, closed loop, "
              f"{args.minutes:g} min, {args.store} × {args.workers} worker(s); {len(traffic.messages)} phrasings; "
              f"RSS at start {' '.join(f'{rss_mb(w.pid):.0f}' for w in workers)} MB")
        tally, counter = Tally(), collections.Counter[str]()
        deadline = time.monotonic() + args.minutes * 60
        connector = aiohttp.TCPConnector(limit=args.conversations)
        timeout = aiohttp.ClientTimeout(total=60)
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(
                report(tally, workers, args.sample_s, deadline),
                *(conversation(session, urls, traffic, tally, args, deadline, counter)
                  for _ in range(args.conversations)))
        elapsed = time.perf_counter() - started
        done = len(tally.latencies)
        print(f"\nturns {done}  ({done / elapsed:.1f} msg/s)  p50 {percentile(tally.latencies, 50):.1f} ms  "
              f"p99 {percentile(tally.latencies, 99):.1f} ms  max {max(tally.latencies):.0f} ms")
        print(f"errors {sum(tally.errors.values())} {dict(tally.errors) or ''}")
        print(f"conversations {tally.conversations}  tickets made {tally.tickets}  "
              f"domain-response answers {tally.domain_answers / max(tally.turns, 1):.1%} of turns")
        print(f"worker log lines: {dict(log_problems(workdir)) or 'none with errors'}")
    finally:
        for proc in reversed(processes):  # the workers first, then the Redis they use
            stop([proc])
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
