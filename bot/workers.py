"""`kefu run --workers N`: N serving processes on one port, kept running by a small supervisor.

The supervisor loads the model once, then forks the workers from it: the encoders' weights, the FAQ index and the
classifier are shared copy-on-write (only read after loading, and moved out of the garbage collector's way by
`gc.freeze()`, whose passes would otherwise write to every object: bot/collector.py), so N workers don't cost N
times the model, and a worker that dies is replaced in about a second. Each worker listens with SO_REUSEPORT (the
kernel spreads connections over them) and runs its own event loop, threads and store connections, all made after
the fork. Workers share conversations, locks, the handoff queue and console events through Redis: REDIS_URL or
endpoints.yml's when given; otherwise, on one machine, a private `redis-server` the supervisor starts and stops
(loopback only, a random password, its append-only file in `kefu-redis/` beside kefu.db). Without either, N > 1 is
refused with the reason: the embedded SQLite store belongs to one process.

The supervisor restarts a worker that exits, unless workers keep dying within seconds of starting (a bad port, a
broken model): then it stops them all and says so. SIGTERM or Ctrl-C stops the workers, then Redis.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.collector import settle_for_serving

log = logging.getLogger(__name__)

CRASH_WINDOW_S = 10.0  # a worker that exits sooner than this after starting counts towards a crash loop
CRASH_LIMIT = 5  # that many quick exits in a row stop the supervisor
STOP_TIMEOUT_S = 15.0


class WorkersError(RuntimeError):
    """Workers cannot be started or kept running; the message says why."""


@dataclass
class Worker:
    number: int
    pid: int
    started: float = field(default_factory=time.monotonic)
    status: int | None = None  # the exit status, once reaped

    def exited(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None


def fork_worker(serve_one: Callable[[], object]) -> int:
    """A child process that runs `serve_one` and exits, never returning into the supervisor's code."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # aiohttp's graceful stop on Ctrl-C / SIGINT
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        serve_one()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # reported here: the child must not unwind into the supervisor's code
        from bot.cli import CommandError  # here: the CLI imports this module

        print(f"Error: {exc}" if isinstance(exc, CommandError) else traceback.format_exc(), flush=True)
    finally:
        os._exit(code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server for this machine's workers only: loopback, password, append-only file on disk."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise WorkersError("--workers N > 1 shares conversations through Redis: set REDIS_URL (or a redis "
                               "tracker_store in endpoints.yml), or install redis-server and kefu starts its own")
        directory.mkdir(parents=True, exist_ok=True)
        self.port, password = _free_port(), secrets.token_urlsafe(24)
        self.binary = binary
        self._config = (f"port {self.port}\nbind 127.0.0.1\nrequirepass {password}\ndir {directory.resolve()}\n"
                        "appendonly yes\nsave \"\"\n")
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        # the password goes in through stdin (a config file named "-"), never on a command line others can read
        self.process = subprocess.Popen([self.binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        text=True)
        assert self.process.stdin is not None
        self.process.stdin.write(self._config)
        self.process.stdin.close()
        self._wait_until_ready(self.port)

    def keep_alive(self) -> None:
        """Start it again if it died: same port and password, its data back from the append-only file."""
        if self.process.poll() is not None:
            print(f"the private redis-server exited (status {self.process.returncode}); starting it again",
                  flush=True)
            self.start()

    def _wait_until_ready(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WorkersError(f"the private redis-server exited at start (status {self.process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise WorkersError("the private redis-server did not start within 10 s")

    def stop(self) -> None:
        self.process.terminate()  # redis-server flushes its append-only file on SIGTERM
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Supervisor:
    def __init__(self, count: int, serve_one: Callable[[], object], redis: PrivateRedis | None) -> None:
        self.count = count
        self.serve_one = serve_one
        self.redis = redis
        self.workers: list[Worker] = []
        self._stopping = False

    def start_worker(self, number: int) -> Worker:
        return Worker(number, fork_worker(self.serve_one))

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        quick_exits = 0
        try:
            self.workers = [self.start_worker(n) for n in range(1, self.count + 1)]
            while not self._stopping:
                time.sleep(0.2)
                if self.redis is not None:
                    self.redis.keep_alive()
                for i, worker in enumerate(self.workers):
                    if self._stopping or not worker.exited():
                        continue
                    quick = time.monotonic() - worker.started < CRASH_WINDOW_S
                    quick_exits = quick_exits + 1 if quick else 0
                    if quick_exits >= CRASH_LIMIT:
                        raise WorkersError(f"workers keep exiting right after starting (worker {worker.number}: "
                                           f"status {worker.status}); stopping — see their messages above")
                    log.warning("worker %d (pid %d) exited with status %s; starting it again",
                                worker.number, worker.pid, worker.status)
                    print(f"worker {worker.number} exited (status {worker.status}); starting it again", flush=True)
                    self.workers[i] = self.start_worker(worker.number)
            return 0
        finally:
            self._stop_workers()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, _signum: int, _frame: object) -> None:
        self._stopping = True

    def _stop_workers(self) -> None:
        running = [w for w in self.workers if not w.exited()]
        for worker in running:
            os.kill(worker.pid, signal.SIGINT)  # aiohttp's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
            running = [w for w in running if not w.exited()]
        for worker in running:
            os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)


def _check_port(host: str, port: int) -> None:
    """One clear line now, rather than every worker failing to listen in turn."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise WorkersError(f"cannot listen on {host}:{port}: {exc.strerror} — choose another port with --port N "
                           "(or KEFU_PORT)") from None


def serve(count: int, host: str, port: int, load: Callable[[], Callable[[str], object]], redis_url: str | None,
          store_dir: Path) -> int:
    """Check the port and the store, `load()` the model here, then fork `count` workers that each run the
    function it returned with the Redis URL (a `kefu run` on host:port with SO_REUSEPORT), and keep them running
    until stopped."""
    _check_port(host, port)
    private = None
    if redis_url is None:
        private = PrivateRedis(store_dir / "kefu-redis")
        redis_url = private.url
        print(f"workers share a private redis-server (data in {store_dir / 'kefu-redis'})", flush=True)
    try:
        serve_one = load()
    except BaseException:
        if private is not None:
            private.stop()
        raise
    settle_for_serving()  # what is loaded now stays shared with the workers: the collector never touches it again
    try:
        return Supervisor(count, lambda: serve_one(redis_url), private).run()
    finally:
        if private is not None:
            private.stop()
