"""kefu and Rasa 3.6 side by side in one run, on Rasa's moodbot and on kefu's demo shop.

For each bot and each engine — kefu with 1 worker, kefu with N workers (Redis shared through REDIS_URL), Rasa — it
measures:
- training time (`kefu train --force` / `rasa train` with an empty cache);
- start-up: process start → first successful REST answer;
- resident memory after start-up and after the load: VmRSS summed over the server's process tree (the supervisor
  of `kefu run --workers` included; pages the forked workers share are counted once per process); per worker,
  the tree's proportional set size (PSS: a shared page counted once, split between its sharers) ÷ N — the
  memory N workers really take, each;
- /model/parse p50/p99, one request at a time, on texts never seen before (every one ends in a word made of a
  request number, so no cache helps) and on a few repeated texts;
- REST (/webhooks/rest/webhook) p50/p99 and msgs/s with C conversations sending new messages flat out (closed loop:
  the next message as soon as the last is answered);
- REST p50/p99 with C conversations sending ~1 message a second each (open loop: a message goes when it is due,
  answered or not, and its latency counts from then, so a server that falls behind is charged for the queue);
- failed requests, and REST answers without a bot message ([]), over all measures.
A conversation plays one short script of SCRIPTS (the moodbot's stories; shop: greeting, FAQ questions, thanks),
then the shopper starts a new conversation with the next script.

It prints one table per bot (rows: the measures; columns: kefu 1 worker, kefu N workers, Rasa, and kefu N workers ÷
Rasa) and checks the issue's targets:

    msgs/s ≥ 10× Rasa's · REST p99 flat out ≤ 1/4 of Rasa's · REST p99 ≤ 50 ms at 50 conversations × 1 msg/s
    parse p50 ≤ 3 ms on the demo shop · RSS ≤ 350 MB per worker · start-up ≤ 5 s

Run (Rasa from a venv made by ../shared/tools/rasa-peer/install.sh; the script trains and starts it on a free port):

    RASA_TELEMETRY_ENABLED=false .venv/bin/python benchmarks/vs_rasa.py --rasa-venv /work/rasavenv
    .venv/bin/python benchmarks/vs_rasa.py --bots moodbot --seconds 10            # kefu only
    .venv/bin/python benchmarks/vs_rasa.py --bots shop --rasa-url http://127.0.0.1:5005   # a Rasa you started
    .venv/bin/python benchmarks/vs_rasa.py --rasa-venv /work/rasavenv --skip-train \\
        --kefu-model shop=models/X.tar.gz --rasa-model shop=/tmp/shop-rasa/models/shop.tar.gz --bots shop

The moodbot is tests/fixtures/moodbot (the files `rasa init` writes, unchanged; `--moodbot DIR` takes another, e.g.
one made by `rasa init --no-prompt --init-dir DIR`); both engines train and serve that directory as it is. The shop
is this repository for kefu and its export by benchmarks/rasa_export.py for Rasa (FAQ as retrieval intents, see
there); Rasa takes tens of minutes to train it on 2 cores, so pass `--rasa-model shop=PATH` to reuse a model (and
`--work-dir DIR` keeps the models a run trains). kefu's N workers: `kefu run --workers N` when `kefu run --help`
offers it, otherwise N `kefu run --reuse-port` processes on one port (`--kefu-workers` chooses; see kefu_commands),
with REDIS_URL pointing at a throw-away redis-server the script starts (its memory is not in kefu's RSS). The load
generator runs on the same machine: its CPU share is printed, and on a small machine it caps what any engine can
show.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_server import stop  # noqa: E402
from benchmarks.rasa_export import export as export_to_rasa  # noqa: E402

KEFU = str(Path(sys.executable).parent / "kefu")
MOODBOT = ROOT / "tests" / "fixtures" / "moodbot"
REST = "/webhooks/rest/webhook"
PARSE = "/model/parse"
REPEATED = 8  # the repeated-text measure cycles through this many texts

# What shoppers say: conversations written for this benchmark (not training examples). The moodbot's follow the
# paths of `rasa init`'s stories (greeting, mood, "did that help?", goodbye); the shop's are a greeting, FAQ questions
# and thanks in one language, none that starts a form (forms run kefu's custom actions in kefu and plain responses
# in the Rasa export, so they would not compare like with like).
SCRIPTS = {
    "moodbot": [
        ["hello", "I'm feeling great", "goodbye"],
        ["hi there friend", "I am sad", "yes, that helped", "bye bye"],
        ["hey, how's it going", "feeling very sad today", "no, not really", "are you a bot?", "see you around"],
        ["good evening to you", "pretty amazing day so far", "am I talking to a machine?", "goodbye"],
        ["hey", "not good at all", "yes", "bye for now"],
    ],
    "shop": [
        ["hello", "how long does shipping take", "what does delivery cost", "can I get an invoice", "thanks a lot"],
        ["你好", "快递几天能到", "运费多少钱", "能开发票吗", "谢谢"],
        ["which payment methods do you accept", "can I pay with Huabei", "can I combine two coupons",
         "how do points work", "are you a robot"],
        ["支持哪些付款方式", "可以用花呗吗", "优惠券能叠加吗", "积分怎么用", "你是机器人吗"],
        ["when do I get my refund", "do you ship abroad", "what are your opening hours", "thanks a lot"],
        ["退款多久到账", "可以寄到国外吗", "你们几点上班", "谢谢"],
    ],
}
PROBE = "hello"  # the start-up question
TARGETS = {"rate_x": 10.0, "p99_fraction": 0.25, "open_p99_ms": 50.0, "parse_p50_ms": 3.0, "rss_worker_mb": 350.0,
           "startup_s": 5.0}
ROWS = [  # key, label, format
    ("train_s", "train (s)", "{:.1f}"),
    ("startup_s", "start-up to first answer (s)", "{:.1f}"),
    ("rss_start_mb", "RSS after start-up (MB, all processes)", "{:.0f}"),
    ("rss_after_mb", "RSS after load (MB, all processes)", "{:.0f}"),
    ("rss_worker_mb", "memory after load per worker (PSS, MB)", "{:.0f}"),
    ("parse_new_p50", "/model/parse new texts p50 (ms)", "{:.1f}"),
    ("parse_new_p99", "/model/parse new texts p99 (ms)", "{:.1f}"),
    ("parse_rep_p50", "/model/parse repeated texts p50 (ms)", "{:.1f}"),
    ("parse_rep_p99", "/model/parse repeated texts p99 (ms)", "{:.1f}"),
    ("closed_rate", "REST flat out: msgs/s", "{:.0f}"),
    ("closed_p50", "REST flat out p50 (ms)", "{:.1f}"),
    ("closed_p99", "REST flat out p99 (ms)", "{:.1f}"),
    ("closed_client_cpu", "  load generator CPU, flat out (% of a core)", "{:.0f}"),
    ("open_rate", "REST ~1 msg/s per conversation: msgs/s", "{:.0f}"),
    ("open_p50", "REST ~1 msg/s per conversation p50 (ms)", "{:.1f}"),
    ("open_p99", "REST ~1 msg/s per conversation p99 (ms)", "{:.1f}"),
    ("errors", "failed requests (all measures)", "{:.0f}"),
    ("silent", "REST answers with no bot message", "{:.0f}"),
]
NO_RATIO = {"closed_client_cpu", "errors", "silent"}  # rows without a kefu/Rasa ratio


# -- processes -------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(roots: Iterable[int]) -> set[int]:
    """`roots` and all their descendants (from /proc/<pid>/stat's parent pid)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _summed_mb(pids: Iterable[int], file: str, field: str) -> float:
    """`field` (in kB) of /proc/<pid>/`file`, summed over `pids`, in MB."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/{file}").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith(field)), 0)
    return total / 1024


def rss_mb(pids: Iterable[int]) -> float:
    """VmRSS summed over `pids`: a page the processes share is counted once per process."""
    return _summed_mb(pids, "status", "VmRSS:")


def pss_mb(pids: Iterable[int]) -> float:
    """Proportional set size summed over `pids`: what they take together, a shared page counted once."""
    return _summed_mb(pids, "smaps_rollup", "Pss:")


def listening_pids(port: int, among: Iterable[int] | None = None) -> set[int]:
    """Processes (of `among`, default all) holding a listening TCP socket on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    found = set()
    for pid in among if among is not None else (int(p.name) for p in Path("/proc").glob("[0-9]*")):
        try:
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                found.add(pid)
        except OSError:
            continue
    return found


@dataclass
class Server:
    """A server under test: the processes the script started (none for a Rasa given by URL)."""

    url: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    started: float = 0.0  # perf_counter when the first process was started
    workers: int = 1
    helpers: list[subprocess.Popen] = field(default_factory=list)  # redis-server
    log: Path | None = None

    @property
    def port(self) -> int:
        return urlparse(self.url).port or 80

    def pids(self) -> set[int]:
        roots = [p.pid for p in self.procs]
        if not roots and urlparse(self.url).hostname in ("127.0.0.1", "localhost"):
            roots = list(listening_pids(self.port))
        return process_tree(roots)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(map(str, proc.args[:3]))} exited with {proc.returncode}; see {self.log}")

    def stop(self) -> None:
        for group in (self.procs, self.helpers):  # the servers first, then the Redis they use
            stop(group)


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    return proc, f"redis://127.0.0.1:{port}/0"


def kefu_has_workers_option() -> bool:
    return "--workers" in subprocess.run([KEFU, "run", "--help"], capture_output=True, text=True).stdout


def kefu_commands(model: Path, port: int, workers: int, workers_option: bool) -> list[list[str]]:
    """The processes to start for `workers` kefu workers on one port."""
    run = [KEFU, "run", "--host", "127.0.0.1", "--port", str(port), "-m", str(model)]
    if workers == 1:
        return [run]
    if workers_option:  # `kefu run --workers N`: one command, kefu starts the workers
        return [[*run, "--workers", str(workers)]]
    return [[*run, "--reuse-port"] for _ in range(workers)]  # until then: N processes sharing the port


def start_kefu(model: Path, serve_dir: Path, workers: int, workers_option: bool, workdir: Path) -> Server:
    """kefu serving `model` from `serve_dir` (copied to a fresh directory, so no conversation carries over)."""
    cwd = Path(tempfile.mkdtemp(prefix=f"kefu-{workers}w-", dir=workdir))
    shutil.copytree(serve_dir, cwd, dirs_exist_ok=True)
    port = free_port()
    helpers, redis_url = [], ""
    if workers > 1:
        redis, redis_url = start_redis(cwd)
        helpers.append(redis)
    env = {**os.environ, "REDIS_URL": redis_url, "KEFU_RATE_LIMIT_EXEMPT": "127.0.0.1/32"}
    log = cwd / "kefu.log"
    server = Server(f"http://127.0.0.1:{port}", workers=workers, helpers=helpers, log=log, started=time.perf_counter())
    with log.open("ab") as out:
        server.procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
                        for cmd in kefu_commands(model, port, workers, workers_option)]
    return server


def rasa_env(cache: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    if cache:
        env["RASA_CACHE_DIRECTORY"] = str(cache)  # a cold training cache, so `rasa train` does all the work
    return env


def start_rasa(venv: Path, project: Path, model: Path) -> Server:
    port = free_port()
    log = project / f"rasa-run-{port}.log"
    server = Server(f"http://127.0.0.1:{port}", log=log, started=time.perf_counter())
    with log.open("ab") as out:
        server.procs = [subprocess.Popen([str(venv / "bin" / "rasa"), "run", "--enable-api", "-i", "127.0.0.1",
                                          "-p", str(port), "-m", str(model)],
                                         cwd=project, env=rasa_env(), stdout=out, stderr=subprocess.STDOUT)]
    return server


# -- training --------------------------------------------------------------------------------------------------------

def timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    with log.open("wb") as out:
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed in {cwd}: see {log}")
    return time.perf_counter() - started


def train_kefu(project: Path, out: Path) -> tuple[float, Path]:
    seconds = timed([KEFU, "train", "--force", "--out", str(out)], project, out.parent / "kefu-train.log")
    return seconds, sorted(out.glob("*.tar.gz"))[-1]


def train_rasa(venv: Path, project: Path, out: Path) -> tuple[float, Path]:
    cache = Path(tempfile.mkdtemp(prefix="rasa-cache-", dir=out.parent))
    seconds = timed([str(venv / "bin" / "rasa"), "train", "--out", str(out), "--fixed-model-name", "model"],
                    project, out.parent / "rasa-train.log", rasa_env(cache))
    shutil.rmtree(cache, ignore_errors=True)
    return seconds, out / "model.tar.gz"


# -- load ------------------------------------------------------------------------------------------------------------

class Messages:
    """Texts for one server. Every text `new()` and `conversation()` give is new (it ends in a word made of a request
    number, never used twice in a run); `repeated()` cycles through a few texts."""

    def __init__(self, scripts: list[list[str]]) -> None:
        self.scripts = scripts
        self.texts = [text for script in scripts for text in script]
        self.count = itertools.count(random.randrange(26**3, 26**4))
        self.again = itertools.cycle(self.texts[:REPEATED])
        self.started = itertools.count()

    def unique(self, text: str) -> str:
        suffix, rest = "", next(self.count)
        while rest:
            rest, letter = divmod(rest, 26)
            suffix += chr(ord("a") + letter)
        return f"{text} {suffix}"

    def new(self) -> str:
        return self.unique(self.texts[next(self.started) % len(self.texts)])

    def conversation(self) -> tuple[str, list[str]]:
        """A new conversation: its sender id and its messages."""
        number = next(self.started)
        return f"c{number}-{time.monotonic_ns()}", [self.unique(t) for t in self.scripts[number % len(self.scripts)]]

    def repeated(self) -> str:
        return next(self.again)


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    silent: int = 0  # REST answers without a single bot message ([])
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0

    def record(self, since: float, body: bytes | None) -> None:
        if body is None:
            self.errors += 1
            return
        self.latencies_ms.append((time.perf_counter() - since) * 1000)
        if body.strip() == b"[]":
            self.silent += 1

    def p(self, q: float) -> float | None:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else None

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


async def post(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> bytes | None:
    """The body of a 200 answer; None for anything else."""
    try:
        async with session.post(url, json=payload) as resp:
            body = await resp.read()
            return body if resp.status == 200 else None
    except (TimeoutError, aiohttp.ClientError):
        return None


async def timed_load(run: Callable[[Load], Coroutine[Any, Any, None]]) -> Load:
    load = Load()
    wall, cpu = time.perf_counter(), time.process_time()
    await run(load)
    load.elapsed_s, load.client_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return load


def session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=120))


async def parse_one_at_a_time(url: str, seconds: float, text: Callable[[], str]) -> Load:
    async def run(load: Load) -> None:
        async with session(1) as client:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                started = time.perf_counter()
                load.record(started, await post(client, url + PARSE, {"text": text()}))
    return await timed_load(run)


async def closed_loop(url: str, conversations: int, seconds: float, messages: Messages) -> Load:
    """`conversations` shoppers at a time, each sending its next message as soon as the last one is answered."""
    async def run(load: Load) -> None:
        end = time.perf_counter() + seconds

        async def shopper(client: aiohttp.ClientSession) -> None:
            while True:
                sender, texts = messages.conversation()
                for text in texts:
                    if time.perf_counter() >= end:
                        return
                    started = time.perf_counter()
                    load.record(started, await post(client, url + REST, {"sender": sender, "message": text}))

        async with session(conversations) as client:
            await asyncio.gather(*(shopper(client) for _ in range(conversations)))
    return await timed_load(run)


async def open_loop(url: str, conversations: int, seconds: float, rate: float, messages: Messages) -> Load:
    """`conversations` shoppers at a time, each sending a message every 0.5–1.5 / `rate` s whether or not the last one
    is answered; a latency counts from the time the message was due."""
    async def run(load: Load) -> None:
        start = time.perf_counter()
        end = start + seconds
        sent: list[asyncio.Task] = []

        async def send(client: aiohttp.ClientSession, due: float, payload: dict[str, Any]) -> None:
            load.record(due, await post(client, url + REST, payload))

        async def shopper(client: aiohttp.ClientSession) -> None:
            due = start + random.uniform(0, 1 / rate)
            while True:
                sender, texts = messages.conversation()
                for text in texts:
                    if due >= end:
                        return
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    sent.append(asyncio.create_task(send(client, due, {"sender": sender, "message": text})))
                    due += random.uniform(0.5, 1.5) / rate

        async with session(conversations * 4) as client:
            await asyncio.gather(*(shopper(client) for _ in range(conversations)))
            await asyncio.gather(*sent)
    return await timed_load(run)


# -- one server ------------------------------------------------------------------------------------------------------

async def first_answer(server: Server, timeout_s: float = 600) -> float:
    """Seconds from the server's start to its first REST answer."""
    async with session(1) as client:
        for attempt in itertools.count():
            server.check_alive()
            try:
                async with client.post(server.url + REST, json={"sender": f"startup-{attempt}", "message": PROBE},
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    if resp.status == 200 and await resp.json():
                        return time.perf_counter() - server.started
            except (TimeoutError, aiohttp.ClientError, ValueError):
                pass
            if time.perf_counter() - server.started > timeout_s:
                raise TimeoutError(f"{server.url} did not answer within {timeout_s:.0f} s; see {server.log}")
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def all_workers_listening(server: Server, timeout_s: float = 600) -> None:
    """With N workers, wait until N processes listen on the port (each has loaded the model: kefu binds after)."""
    deadline = time.perf_counter() + timeout_s
    while len(listening_pids(server.port, server.pids())) < server.workers:
        server.check_alive()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"fewer than {server.workers} workers listen on {server.port}; see {server.log}")
        await asyncio.sleep(0.2)


async def measure(server: Server, scripts: list[list[str]], args: argparse.Namespace) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    if server.procs:
        figures["startup_s"] = await first_answer(server)
        await all_workers_listening(server)
    pids = server.pids()
    figures["rss_start_mb"] = rss_mb(pids) if pids else None
    messages = Messages(scripts)
    await closed_loop(server.url, args.conversations, min(3.0, args.seconds), messages)  # warm-up
    loads = {
        "parse_new": await parse_one_at_a_time(server.url, args.seconds, messages.new),
        "parse_rep": await parse_one_at_a_time(server.url, args.seconds, messages.repeated),
        "closed": await closed_loop(server.url, args.conversations, args.seconds, messages),
        "open": await open_loop(server.url, args.conversations, args.seconds, args.rate, messages),
    }
    pids = server.pids()
    figures["rss_after_mb"] = rss_mb(pids) if pids else None
    figures["rss_worker_mb"] = pss_mb(pids) / server.workers if pids else None
    for name, load in loads.items():
        figures[f"{name}_p50"], figures[f"{name}_p99"] = load.p(50), load.p(99)
    figures["closed_rate"], figures["open_rate"] = loads["closed"].rate, loads["open"].rate
    figures["closed_client_cpu"] = 100 * loads["closed"].client_cpu_s / loads["closed"].elapsed_s
    figures["errors"] = sum(load.errors for load in loads.values())
    figures["silent"] = sum(load.silent for load in loads.values())
    return figures


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop  # the load generator shares the machine: spend as little of it as possible
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def serve_and_measure(server: Server, scripts: list[list[str]], args: argparse.Namespace,
                      train_s: float | None) -> dict[str, float | None]:
    try:
        return {"train_s": train_s, **run_async(measure(server, scripts, args))}
    finally:
        server.stop()


# -- bots ------------------------------------------------------------------------------------------------------------

@dataclass
class BotDirs:
    kefu_train: Path  # where `kefu train` runs
    kefu_serve: Path  # copied to a fresh directory for each `kefu run`
    rasa: Path  # the Rasa project (`rasa train`, `rasa run`)


def prepare(bot: str, workdir: Path, args: argparse.Namespace) -> BotDirs:
    if bot == "moodbot":
        project = workdir / "project"
        shutil.copytree(args.moodbot, project, dirs_exist_ok=True)
        if not (project / "credentials.yml").exists():
            (project / "credentials.yml").write_text("rest:\n")
        serve = workdir / "kefu-serve"
        serve.mkdir(exist_ok=True)
        return BotDirs(project, serve, project)
    serve = workdir / "kefu-serve"  # the shop's custom actions and the shop data they read, not the project's db
    for name in ("actions", "data"):
        shutil.copytree(ROOT / name, serve / name, dirs_exist_ok=True)
    rasa = workdir / "rasa-project"
    if args.rasa_venv:
        export_to_rasa(ROOT, rasa)
    return BotDirs(ROOT, serve, rasa)


def given_model(values: list[str], bot: str, bots: list[str]) -> Path | None:
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name == bot:
            return Path(path).resolve()
        if not sep and len(bots) == 1:
            return Path(value).resolve()
    return None


def kefu_model(bot: str, dirs: BotDirs, workdir: Path, args: argparse.Namespace) -> tuple[float | None, Path]:
    model = given_model(args.kefu_model, bot, args.bot_list)
    if model or args.skip_train:
        model = model or (max((ROOT / "models").glob("*.tar.gz"), default=None) if bot == "shop" else None)
        if model is None:
            sys.exit(f"--skip-train: pass --kefu-model {bot}=PATH")
        return None, model
    print(f"  kefu train ({bot}) …", flush=True)
    return train_kefu(dirs.kefu_train, workdir / "kefu-models")


def rasa_model(bot: str, dirs: BotDirs, workdir: Path, args: argparse.Namespace) -> tuple[float | None, Path]:
    model = given_model(args.rasa_model, bot, args.bot_list)
    if model or args.skip_train:
        if model is None:
            sys.exit(f"--skip-train: pass --rasa-model {bot}=PATH")
        return None, model
    print(f"  rasa train ({bot}) …", flush=True)
    return train_rasa(args.rasa_venv, dirs.rasa, workdir / "rasa-models")


def bench_bot(bot: str, workdir: Path, args: argparse.Namespace) -> dict[str, dict[str, float | None]]:
    """The figures of every engine on `bot`: column name → measure → value."""
    dirs = prepare(bot, workdir, args)
    scripts = SCRIPTS[bot]
    train_s, model = kefu_model(bot, dirs, workdir, args)
    rasa = rasa_model(bot, dirs, workdir, args) if args.rasa_venv else None
    columns: dict[str, dict[str, float | None]] = {}
    for workers in dict.fromkeys([1, args.workers]):
        print(f"  kefu, {workers} worker(s) …", flush=True)
        server = start_kefu(model, dirs.kefu_serve, workers, args.workers_option, workdir)
        columns[f"kefu {workers}w"] = serve_and_measure(server, scripts, args, train_s)
    if rasa:
        print("  Rasa …", flush=True)
        columns["Rasa"] = serve_and_measure(start_rasa(args.rasa_venv, dirs.rasa, rasa[1]), scripts, args, rasa[0])
    elif args.rasa_url:
        print(f"  Rasa at {args.rasa_url} …", flush=True)
        columns["Rasa"] = serve_and_measure(Server(args.rasa_url.rstrip("/")), scripts, args, None)
    return columns


# -- report ----------------------------------------------------------------------------------------------------------

def cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def table(bot: str, columns: dict[str, dict[str, float | None]], kefu: str) -> str:
    names = list(columns)
    ratio = "Rasa" in columns and kefu in columns
    head = [f"{bot}", *names] + ([f"{kefu.removeprefix('kefu ')}/Rasa"] if ratio else [])
    rows = [head]
    for key, label, fmt in ROWS:
        row = [label, *(cell(columns[n].get(key), fmt) for n in names)]
        if ratio and key in NO_RATIO:
            row.append("")
        elif ratio:
            mine, theirs = columns[kefu].get(key), columns["Rasa"].get(key)
            row.append(f"{mine / theirs:.2f}" if mine is not None and theirs else "—")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def targets(bot: str, columns: dict[str, dict[str, float | None]], kefu: str, args: argparse.Namespace) -> list[str]:
    mine, rasa = columns[kefu], columns.get("Rasa", {})
    lines = []

    def ratio(key: str) -> float | None:
        return mine[key] / rasa[key] if rasa.get(key) and mine.get(key) is not None else None

    rate_x, p99_x = ratio("closed_rate"), ratio("closed_p99")
    lines.append(f"msgs/s ≥ {TARGETS['rate_x']:g}× Rasa's: {kefu} {cell(rate_x, '{:.1f}×')} — "
                 f"{verdict(None if rate_x is None else rate_x >= TARGETS['rate_x'])}")
    lines.append(f"REST p99 flat out ≤ {TARGETS['p99_fraction']:g}× Rasa's: {kefu} {cell(p99_x, '{:.2f}×')} — "
                 f"{verdict(None if p99_x is None else p99_x <= TARGETS['p99_fraction'])}")
    for name, figures in columns.items():
        if not name.startswith("kefu"):
            continue
        checks = [(f"REST p99 ≤ {TARGETS['open_p99_ms']:g} ms at {args.conversations} conv × {args.rate:g} msg/s",
                   "open_p99", TARGETS["open_p99_ms"], "ms"),
                  (f"RSS per worker ≤ {TARGETS['rss_worker_mb']:g} MB", "rss_worker_mb", TARGETS["rss_worker_mb"],
                   "MB"),
                  (f"start-up ≤ {TARGETS['startup_s']:g} s", "startup_s", TARGETS["startup_s"], "s")]
        if bot == "shop":
            checks.insert(1, (f"parse p50 ≤ {TARGETS['parse_p50_ms']:g} ms", "parse_new_p50",
                              TARGETS["parse_p50_ms"], "ms"))
        for label, key, limit, unit in checks:
            value = figures.get(key)
            lines.append(f"{label}: {name} {cell(value, '{:.1f}')} {unit} — "
                         f"{verdict(None if value is None else value <= limit)}")
    return lines


def report(bot: str, columns: dict[str, dict[str, float | None]], args: argparse.Namespace) -> None:
    kefu = f"kefu {args.workers}w"
    print()
    print(table(bot, columns, kefu))
    print(f"targets ({bot}):")
    for line in targets(bot, columns, kefu, args):
        print(f"  {line}")
    print(flush=True)


# -- main ------------------------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", default="moodbot,shop", help="comma-separated: moodbot, shop")
    parser.add_argument("--rasa-venv", type=Path, help="a Rasa 3.6 venv: train and start Rasa on a free port")
    parser.add_argument("--rasa-url", help="a running Rasa (started with --enable-api) serving the one bot of --bots")
    parser.add_argument("--workers", type=int, default=2, help="kefu workers for the second kefu column")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each load measure")
    parser.add_argument("--conversations", type=int, default=50, help="concurrent conversations")
    parser.add_argument("--rate", type=float, default=1.0, help="msgs/s per conversation in the open loop")
    parser.add_argument("--skip-train", action="store_true", help="use --kefu-model / --rasa-model (kefu on the "
                        "shop: the newest in models/)")
    parser.add_argument("--kefu-model", action="append", default=[], metavar="[BOT=]PATH")
    parser.add_argument("--rasa-model", action="append", default=[], metavar="[BOT=]PATH")
    parser.add_argument("--moodbot", type=Path, default=MOODBOT, help="the moodbot project (`rasa init`'s files)")
    parser.add_argument("--kefu-workers", choices=["auto", "option", "processes"], default="auto",
                        help="N workers as `kefu run --workers N` (option), as N `kefu run --reuse-port` processes "
                        "(processes), or the option when `kefu run --help` has it (auto)")
    parser.add_argument("--work-dir", type=Path, help="keep models and logs here (default: a temporary directory)")
    args = parser.parse_args()
    args.bot_list = [b.strip() for b in args.bots.split(",") if b.strip()]
    if unknown := set(args.bot_list) - set(SCRIPTS):
        parser.error(f"unknown bots {sorted(unknown)}: choose from {sorted(SCRIPTS)}")
    if args.rasa_url and (args.rasa_venv or len(args.bot_list) != 1):
        parser.error("--rasa-url measures one running Rasa: give one bot in --bots, and no --rasa-venv")
    if args.rasa_venv and not (args.rasa_venv / "bin" / "rasa").exists():
        parser.error(f"no Rasa in {args.rasa_venv} (bin/rasa): see ../shared/tools/rasa-peer/README.md")
    if args.workers > 1 and not shutil.which("redis-server"):
        parser.error("--workers > 1 shares Redis: redis-server must be on PATH")
    return args


def main() -> None:
    args = parse_args()
    args.workers_option = {"auto": kefu_has_workers_option(), "option": True, "processes": False}[args.kefu_workers]
    random.seed()
    workdir = args.work_dir or Path(tempfile.mkdtemp(prefix="kefu-vs-rasa-"))
    workdir = workdir.resolve()
    load1, _, _ = os.getloadavg()
    print(f"kefu vs Rasa: {os.cpu_count()} cores, load average {load1:.1f} before; {args.seconds:g} s per measure, "
          f"{args.conversations} conversations; kefu {args.workers} workers via "
          f"{'--workers' if args.workers_option else '--reuse-port processes'}; work dir {workdir}", flush=True)
    try:
        for bot in args.bot_list:
            print(f"{bot}:", flush=True)
            (workdir / bot).mkdir(parents=True, exist_ok=True)
            report(bot, bench_bot(bot, workdir / bot, args), args)
    finally:
        if not args.work_dir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
