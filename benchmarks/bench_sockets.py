"""One worker holding many idle chat-bubble sockets while it serves a REST load.

Starts one `kefu run` worker (SQLite store, a throw-away project directory; the benchmark's address exempt from
the rate limits) and measures, in this order:
1. a REST load of CONVERSATIONS shoppers, each sending one message a second to /webhooks/rest/webhook (every
   text unique), with no socket open, for SECONDS;
2. SOCKETS chat-bubble sessions opened the way the bubble does on a page load -- `POST /api/widget/session`,
   `GET /api/widget/history`, the WebSocket with the page's `Origin`, `hello`, then `welcome` … `ready` -- at
   RAMP a second (the REST load runs meanwhile and is reported too);
3. the same REST load again with every socket open and idle, for SECONDS. The sockets send nothing; they
   answer the server's heartbeat (a WebSocket ping every `heartbeat_s`, 25 s) as a browser does;
4. which sockets are still open: each sends the protocol's `{"type": "ping"}` and must get its `pong`.
The sockets live in a separate client process, so their upkeep does not slow the REST client's clock.

Prints one table: sockets requested / open / still open at the end, the worker's resident memory (VmRSS) and
CPU with 0 and with SOCKETS sockets, REST p50/p95/p99 and errors with and without them, then PASS/FAIL against
the target: REST p99 ≤ 100 ms with every socket open (issue "Ten times Rasa's throughput").

    .venv/bin/python benchmarks/bench_sockets.py [--sockets 10000] [--seconds 60] [--conversations 50]
        [--ramp 200] [--model models/X.tar.gz]

Each socket is a file descriptor in the worker and in the client: both raise their soft open-files limit to the
hard one (bot/limits.py); with `ulimit -n` below SOCKETS + a few hundred the run says so and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_server import QUESTIONS, ROOT, free_port, percentile, rss_mb, stop, wait_ready

from bot.limits import raise_open_files_limit
from bot.model import latest_archive

P99_TARGET_MS = 100.0
SPARE_FDS = 500  # descriptors besides the sockets: REST clients, the store, the model, logs
OPEN_TIMEOUT_S = 30.0  # one page load: session, history, socket, hello … ready
MAX_OPENING = 64  # page loads in flight at once during the ramp
CHECK_PER_S = 1000.0  # protocol pings a second in the final check
PONG_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 10.0


# -- the worker ---------------------------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(model: Path, port: int, project: Path) -> subprocess.Popen[bytes]:
    """`kefu run` in a throw-away project (its own kefu.db and uploads/), with a soft open-files limit as high
    as the hard one, and the loopback address exempt from rate limits (one client opens every session)."""
    shutil.copytree(ROOT / "actions", project / "actions", dirs_exist_ok=True)  # custom actions and their
    shutil.copytree(ROOT / "data", project / "data", dirs_exist_ok=True)  # demo shop data, not the project db
    env = {**os.environ, "REDIS_URL": "", "PYTHONPATH": str(ROOT), "KEFU_RATE_LIMIT_EXEMPT": "127.0.0.1/32"}
    log = (project / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--port", str(port), "-m", str(model)],
                            cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=raise_open_files_limit)


def worker_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- the REST load ------------------------------------------------------------------------------------------------


@dataclass
class RestLoad:
    """Latencies (ms) and failures of one REST load, and the worker's CPU over it."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu_percent: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else float("nan")


async def rest_load(base: str, conversations: int, label: str, pid: int, seconds: float | None = None,
                    until: asyncio.Event | None = None) -> RestLoad:
    """`conversations` shoppers, each sending one message a second (spread over the second) for `seconds` or
    until `until` is set; a shopper waits for its answer, so a slow one delays (not bunches) its next message."""
    result = RestLoad()
    end = time.monotonic() + (seconds if seconds is not None else float("inf"))
    counter = 0
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def shopper(cid: int) -> None:
            nonlocal counter
            next_at = time.monotonic() + cid / conversations
            while True:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if time.monotonic() >= end or (until is not None and until.is_set()):
                    return
                while next_at <= time.monotonic():  # on the shopper's 1 s grid; ticks missed waiting are skipped
                    next_at += 1.0
                counter += 1
                text = f"{random.choice(QUESTIONS)} {counter}"  # unique: no cache answers it
                started = time.perf_counter()
                try:
                    async with session.post(f"{base}/webhooks/rest/webhook",
                                            json={"sender": f"{label}-{cid}", "message": text}) as resp:
                        await resp.read()
                        if resp.status != 200:
                            result.errors[f"HTTP {resp.status}"] += 1
                            continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.errors[type(exc).__name__] += 1
                    continue
                result.latencies.append((time.perf_counter() - started) * 1000)

        started, cpu_before = time.monotonic(), cpu_s(pid)
        await asyncio.gather(*(shopper(c) for c in range(conversations)))
        result.seconds = time.monotonic() - started
        result.cpu_percent = 100 * (cpu_s(pid) - cpu_before) / max(result.seconds, 1e-9)
    return result


# -- the sockets (a separate process) -----------------------------------------------------------------------------


@dataclass
class Tab:
    """One shopper's open page: its socket and what came through it."""

    ws: aiohttp.ClientWebSocketResponse
    heartbeats: int = 0  # WebSocket pings from the server, answered
    pong: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None


class Holder:
    """Opens the bubble's sessions and sockets, keeps them idle (answering heartbeats) and checks them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.origin = base  # the pages kefu serves itself (the demo shop) are an allowed origin on any port
        self.tabs: list[Tab] = []
        self.failures: Counter[str] = Counter()
        self.pumps: set[asyncio.Task[None]] = set()
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Holder:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=OPEN_TIMEOUT_S))
        return self

    async def __aexit__(self, *exc: object) -> None:
        closing = [asyncio.create_task(tab.ws.close()) for tab in self.tabs if not tab.ws.closed]
        if closing:
            await asyncio.wait(closing, timeout=20)
        for task in self.pumps:
            task.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        assert self.session is not None
        await self.session.close()

    async def open(self, n: int, per_s: float, progress: Connection) -> None:
        """Open n tabs at per_s a second (at most MAX_OPENING at once), reporting progress now and then."""
        gate = asyncio.Semaphore(MAX_OPENING)
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()

        async def one() -> None:
            try:
                async with asyncio.timeout(OPEN_TIMEOUT_S):
                    await self._open_one()
            except Exception as exc:
                self.failures[describe_failure(exc)] += 1
            finally:
                gate.release()

        reported = started
        for i in range(n):
            await asyncio.sleep(max(0.0, started + i / per_s - time.monotonic()))
            await gate.acquire()
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            if time.monotonic() - reported >= PROGRESS_EVERY_S:
                reported = time.monotonic()
                progress.send(("progress", len(self.tabs), sum(self.failures.values())))
        await asyncio.gather(*pending)

    async def _open_one(self) -> None:
        assert self.session is not None
        headers = {"Origin": self.origin}
        async with self.session.post(f"{self.base}/api/widget/session", json={}, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"session HTTP {resp.status}")
            session = await resp.json()
        token = session["token"]
        async with self.session.get(f"{self.base}/api/widget/history",
                                    headers={**headers, "Authorization": f"Bearer {token}"}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"history HTTP {resp.status}")
            last_seq = (await resp.json())["last_seq"]
        # no client heartbeat, as a browser: the server pings, we answer (autoping off only to count them)
        ws = await self.session.ws_connect(f"{self.base}/api/widget/ws", origin=self.origin, autoping=False)
        try:
            await ws.send_json({"type": "hello", "token": token, "last_seq": last_seq})
            while True:
                message = await ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"closed before ready ({ws.close_code})")
                if json.loads(message.data).get("type") == "ready":
                    break
        except BaseException:
            await ws.close()
            raise
        tab = Tab(ws)
        self.tabs.append(tab)
        pump = asyncio.create_task(self._pump(tab))
        self.pumps.add(pump)
        pump.add_done_callback(self.pumps.discard)

    async def _pump(self, tab: Tab) -> None:
        """Read the tab's socket for as long as it is open: answer heartbeats, note pongs and the close."""
        ws = tab.ws
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.PING:
                tab.heartbeats += 1
                await ws.pong(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                if json.loads(message.data).get("type") == "pong":
                    tab.pong.set()
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                tab.close_code = ws.close_code if ws.close_code is not None else -1
                return

    async def check(self) -> dict[str, Any]:
        """Which tabs are still open: each must answer the protocol's ping with pong."""
        started = time.monotonic()
        live = [tab for tab in self.tabs if tab.close_code is None and not tab.ws.closed]
        for i, tab in enumerate(live):
            await asyncio.sleep(max(0.0, started + i / CHECK_PER_S - time.monotonic()))
            tab.pong.clear()
            with contextlib.suppress(Exception):
                await tab.ws.send_json({"type": "ping"})

        async def answered(tab: Tab) -> bool:
            try:
                await asyncio.wait_for(tab.pong.wait(), PONG_TIMEOUT_S)
            except TimeoutError:
                return False
            return True

        alive = sum(await asyncio.gather(*(answered(tab) for tab in live)))
        closes = Counter(str(tab.close_code) for tab in self.tabs if tab.close_code is not None)
        heartbeats = [tab.heartbeats for tab in self.tabs]
        return {"opened": len(self.tabs), "alive": alive, "closes": dict(closes),
                "heartbeats_min": min(heartbeats, default=0), "heartbeats_total": sum(heartbeats)}


def describe_failure(exc: BaseException) -> str:
    text = str(exc).split("\n")[0][:80]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def hold_sockets(base: str, n: int, per_s: float, conn: Connection) -> None:
    """The socket client's process: ("open") → opens n tabs; ("check") → checks them; ("close") → closes."""
    raise_open_files_limit()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        async with Holder(base) as holder:
            started = time.monotonic()
            await holder.open(n, per_s, conn)
            conn.send(("opened", len(holder.tabs), dict(holder.failures), time.monotonic() - started))
            while (command := await loop.run_in_executor(None, conn.recv)) != "close":
                if command == "check":
                    conn.send(("checked", await holder.check()))
        conn.send(("closed",))

    asyncio.run(run())


# -- the benchmark ------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    rss_idle_mb: float = 0.0
    rss_open_mb: float = 0.0
    rss_end_mb: float = 0.0
    fds_open: int = 0
    opened: int = 0
    open_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)
    idle_cpu_percent: float = 0.0


async def receive(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def idle_cpu(pid: int, seconds: float = 10.0) -> float:
    """The worker's CPU with no REST load (what the open sockets alone cost)."""
    before = cpu_s(pid)
    await asyncio.sleep(seconds)
    return 100 * (cpu_s(pid) - before) / seconds


async def bench(args: argparse.Namespace, base: str, worker: subprocess.Popen[bytes],
                results: dict[str, RestLoad], figures: Figures) -> None:
    pid = worker.pid
    await rest_load(base, args.conversations, "warmup", pid, seconds=5)
    print(f"worker up (pid {pid}, {rss_mb(pid):.0f} MB); REST load with no socket for {args.seconds:g} s…",
          flush=True)
    results["none"] = await rest_load(base, args.conversations, "rest-0", pid, seconds=args.seconds)
    figures.rss_idle_mb = rss_mb(pid)  # warm: after the same load, so the difference is the sockets'

    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    holder = multiprocessing.get_context("spawn").Process(
        target=hold_sockets, args=(base, args.sockets, args.ramp, theirs), name="kefu-bench-sockets")
    holder.start()
    try:
        print(f"opening {args.sockets} sockets at {args.ramp:g}/s…", flush=True)
        ramping = asyncio.Event()
        during = asyncio.create_task(rest_load(base, args.conversations, "rest-ramp", pid, until=ramping))
        while (message := await receive(ours))[0] == "progress":
            print(f"  {message[1]} open, {message[2]} failed; worker {rss_mb(pid):.0f} MB", flush=True)
        _, figures.opened, figures.failures, figures.open_s = message
        ramping.set()
        results["ramp"] = await during
        figures.rss_open_mb, figures.fds_open = rss_mb(pid), worker_fds(pid)
        print(f"{figures.opened} open in {figures.open_s:.0f} s; worker {figures.rss_open_mb:.0f} MB, "
              f"{figures.fds_open} descriptors; idle for 10 s, then the REST load for {args.seconds:g} s…", flush=True)
        figures.idle_cpu_percent = await idle_cpu(pid)
        results["open"] = await rest_load(base, args.conversations, "rest-n", pid, seconds=args.seconds)
        ours.send("check")
        _, figures.check = await receive(ours)
        figures.rss_end_mb = rss_mb(pid)
        ours.send("close")
        await receive(ours)
    finally:
        holder.join(timeout=60)
        if holder.is_alive():
            holder.terminate()


def report(args: argparse.Namespace, results: dict[str, RestLoad], figures: Figures, log: Path) -> bool:
    n, check = args.sockets, figures.check
    alive = check.get("alive", 0)
    per_socket_kb = (figures.rss_open_mb - figures.rss_idle_mb) * 1024 / max(figures.opened, 1)
    rows = [
        ("sockets requested / open / still open at end", f"{n} / {figures.opened} / {alive}"),
        ("open rate", f"{figures.opened / max(figures.open_s, 1e-9):.0f} /s (asked {args.ramp:g}/s), "
                      f"{figures.open_s:.0f} s"),
        ("heartbeats answered per socket (min) / total", f"{check.get('heartbeats_min', 0)} / "
                                                         f"{check.get('heartbeats_total', 0)}"),
        ("worker RSS, 0 sockets", f"{figures.rss_idle_mb:.0f} MB"),
        (f"worker RSS, {figures.opened} sockets (end)", f"{figures.rss_open_mb:.0f} MB ({figures.rss_end_mb:.0f} MB)"
                                                        f", {per_socket_kb:.1f} KB a socket"),
        (f"worker descriptors, {figures.opened} sockets", str(figures.fds_open)),
        (f"worker CPU, {figures.opened} idle sockets, no REST", f"{figures.idle_cpu_percent:.1f} %"),
    ]
    for key, what in (("none", "0 sockets"), ("ramp", "while opening"), ("open", f"{figures.opened} sockets")):
        load = results.get(key)
        if load is None:
            continue
        errors = sum(load.errors.values())
        rows.append((f"REST {what}: p50 / p95 / p99", f"{load.p(50):.1f} / {load.p(95):.1f} / {load.p(99):.1f} ms "
                                                      f"({len(load.latencies)} answers, "
                                                      f"{len(load.latencies) / max(load.seconds, 1e-9):.0f}/s, "
                                                      f"{errors} errors, worker CPU {load.cpu_percent:.0f} %)"))
    width = max(len(label) for label, _ in rows)
    print()
    print(f"one kefu worker, {args.conversations} REST shoppers at 1 message/s, {args.seconds:g} s a load; "
          f"{os.cpu_count()} cores")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    if figures.failures:
        print("  sockets that did not open: " + ", ".join(f"{k} ×{v}" for k, v in figures.failures.items()))
    if check.get("closes"):
        print("  sockets closed by the server (close code ×n): "
              + ", ".join(f"{k} ×{v}" for k, v in check["closes"].items()))
    for key in ("none", "ramp", "open"):
        if key in results and results[key].errors:
            print(f"  REST errors ({key}): " + ", ".join(f"{k} ×{v}" for k, v in results[key].errors.items()))
    problems = [line for line in log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")]
    if problems:
        print(f"  worker log: {len(problems)} warnings/errors, first: {problems[0][:160]}")

    p99 = results["open"].p(99) if "open" in results else float("inf")
    p99_ok = p99 <= P99_TARGET_MS and not results["open"].errors
    sockets_ok = alive >= n
    print()
    print(f"{'PASS' if p99_ok else 'FAIL'}  REST p99 with {figures.opened} sockets open: {p99:.1f} ms "
          f"(target ≤ {P99_TARGET_MS:g} ms, no errors)")
    print(f"{'PASS' if sockets_ok else 'FAIL'}  sockets still open at the end: {alive} of {n}")
    return p99_ok and sockets_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=10_000, help="chat-bubble sockets to open and hold")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="each REST load's length (with and without sockets); > 25 s so every socket sees a "
                             "heartbeat")
    parser.add_argument("--conversations", type=int, default=50, help="REST shoppers, one message a second each")
    parser.add_argument("--ramp", type=float, default=200.0, help="sockets opened a second")
    parser.add_argument("--model", type=Path, default=None, help="model archive (default: newest in models/)")
    args = parser.parse_args()
    model = args.model or latest_archive(ROOT / "models")
    if model is None:
        sys.exit("no model: run `kefu train` or pass --model")
    model = model.resolve()
    limit = raise_open_files_limit()
    if limit < args.sockets + SPARE_FDS:
        sys.exit(f"{args.sockets} sockets need about {args.sockets + SPARE_FDS} open files in the worker and in "
                 f"this client; the limit here is {limit} (raise the hard limit: ulimit -Hn, limits.conf)")
    random.seed(7)
    results: dict[str, RestLoad] = {}
    figures = Figures()
    project = Path(tempfile.mkdtemp(prefix="kefu-sockets-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    worker = start_worker(model, port, project)
    ok = False
    try:
        asyncio.run(wait_ready(base, worker, timeout=300))
        print(f"model {model.name}; open-files limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}", flush=True)
        asyncio.run(bench(args, base, worker, results, figures))
        ok = report(args, results, figures, project / "worker.log")
    finally:
        stop([worker], timeout=30)
        shutil.rmtree(project, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
