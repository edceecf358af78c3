"""Shared pytest fixtures. One section per area; add yours as a new section below."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# -- memory: apps built by one test are freed before the next ----------------------------------------------
#
# aiohttp memoises each app's middleware chain in a module-level LRU of 1,024 entries keyed by the app, so
# every app a test builds (with its model, ~120 MB) stays alive for the rest of the session: the suite grew
# to 16 GB and was killed. A server process builds one app, so only the tests need this.


@pytest.fixture(autouse=True)
def _free_the_apps_aiohttp_memoised() -> Iterator[None]:
    yield
    import aiohttp.web_app

    clear = getattr(getattr(aiohttp.web_app, "_cached_build_middleware", None), "cache_clear", None)
    if clear is not None:
        clear()


# -- real redis-server (stores, and anything that runs in Redis mode) ----------------------------------------
#
# `redis_url` starts one redis-server per test session on a free port, in a temporary directory, with no
# persistence, and stops it at the end. Tests isolate themselves with their own key prefix, not FLUSHALL.
# A missing redis-server is an error, never a skip: the Redis backend must be tested (`make install`).


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian package `redis-server`): run `make install`",
                    pytrace=False)
    workdir: Path = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # the free port can be taken between probing and binding; try another
        port = _free_port()
        log = (workdir / f"redis-{port}.log").open("wb")
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline and not _redis_answers(port):
            time.sleep(0.02)
        if proc.poll() is None and _redis_answers(port):
            break
        proc.kill()
        proc.wait()
        log.close()
    else:
        output = (workdir / f"redis-{port}.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not start (answer PING) on 127.0.0.1:{port}:\n{output}", pytrace=False)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- a model trained once per test session from the project's own starter data ---------------------------------

@pytest.fixture(scope="session")
def starter_model(tmp_path_factory):
    from bot.formats.project import load_project
    from bot.model import train

    reuse = os.environ.get("KEFU_TEST_MODEL")  # iterating on one test: a model trained before
    if reuse:
        return Path(reuse)
    # pytest-xdist's workers share one model: the first to get here trains it, the others wait and read it
    run = tmp_path_factory.getbasetemp()  # this run's; a worker's lies inside it
    shared = (run.parent if os.environ.get("PYTEST_XDIST_WORKER") else run) / "starter-model"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "model.path"
        if done.exists():
            return Path(done.read_text())
        root = Path(__file__).resolve().parent.parent
        project = load_project(root / "config.yml", root / "domain.yml", [root / "data"])
        model = train(project, shared, progress=lambda _: None)
        done.write_text(str(model))
        return model


# -- the human handoff: the app on either backend, with handoff settings for the test ---------------------------
#
# `kefu_app(**handoff_settings)` starts the real app (starter model, real stores) and returns its test client;
# calling it twice in one test gives two workers on the same data (the same Redis prefix, or the same SQLite
# file after the first is closed: a restart). Opening hours default to 24h so tests pass at any time of day.

@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def handoff_backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    from uuid import uuid4

    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return {"name": request.param, "redis_url": url, "db_path": tmp_path / "kefu.db",
            "prefix": f"test-{uuid4().hex[:10]}"}


@pytest.fixture
def kefu_app(handoff_backend, starter_model, aiohttp_client):
    from bot.endpoints import Endpoints, StoreEndpoint
    from bot.server import ServerSettings, create_app
    from handoff.app_keys import HANDOFF_SETTINGS
    from handoff.settings import HandoffSettings

    root = Path(__file__).resolve().parent.parent

    async def make(**handoff: object):
        settings = ServerSettings.for_project(root, model_path=starter_model, db_path=handoff_backend["db_path"])
        settings.redis_url = handoff_backend["redis_url"]
        settings.endpoints = Endpoints(tracker_store=StoreEndpoint(type="redis", key_prefix=handoff_backend["prefix"]))
        app = create_app(settings)
        app[HANDOFF_SETTINGS] = HandoffSettings(**{"hours": {"daily": "24h"}, "tick_s": 0.1, **handoff})
        return await aiohttp_client(app)

    return make


# -- a redis-server of the test's own, to stop, restart or configure (persistence, CONFIG disabled) -----------
#
# `own_redis(*args)` starts one on a free port in the test's temporary directory with extra redis-server
# arguments (default: no persistence, like `redis_url`); `.stop()` and `.start()` restart it on the same port
# and directory. Stopped at the end of the test.


class RedisProcess:
    def __init__(self, binary: str, workdir: Path, args: tuple[str, ...]) -> None:
        self.binary, self.workdir, self.args = binary, workdir, args
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.workdir), *self.args], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while self.proc.poll() is None and time.monotonic() < deadline and not _redis_answers(self.port):
            time.sleep(0.02)
        if not _redis_answers(self.port):
            output = (self.workdir / f"redis-{self.port}.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"redis-server did not start on 127.0.0.1:{self.port}:\n{output}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[object]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian package `redis-server`): run `make install`",
                    pytrace=False)
    started: list[RedisProcess] = []

    def start(*args: str) -> RedisProcess:
        workdir = tmp_path / f"redis-{len(started)}"
        workdir.mkdir()
        server = RedisProcess(binary, workdir, args or ("--save", "", "--appendonly", "no"))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- real mail servers for the e-mail channel (tests/test_email*.py) ------------------------------------------
#
# `dovecot` starts Debian's IMAP server as an ordinary process on a free port with a throw-away mailbox and config
# in the test's directory (`make install` installs `dovecot-imapd`; missing, it is an error, never a skip);
# `smtp_catcher` is an aiosmtpd server on 127.0.0.1 that keeps what kefu sends. `email_app(**env)` is the real
# app (starter model, SQLite) with the e-mail channel configured through EMAIL_* variables for both.


@pytest.fixture
def dovecot():
    from tests.mailservers import Dovecot

    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        pytest.fail("dovecot is not installed (Debian package `dovecot-imapd`): run `make install`", pytrace=False)
    # a short directory: dovecot's sockets live in it, and a socket's path is at most 107 bytes (a test's
    # tmp_path under a pytest-xdist worker is longer)
    workdir = Path(tempfile.mkdtemp(prefix="kefu-dovecot-"))
    server = Dovecot(binary, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def smtp_catcher():
    from tests.mailservers import SmtpCatcher

    catcher = SmtpCatcher()
    catcher.controller.start()
    try:
        yield catcher
    finally:
        catcher.controller.stop()


@pytest.fixture
def email_app(dovecot, smtp_catcher, starter_model, aiohttp_client, tmp_path, monkeypatch, request):
    from uuid import uuid4

    from bot.endpoints import StoreEndpoint
    from bot.server import ServerSettings, create_app
    from handoff.app_keys import HANDOFF_SETTINGS
    from handoff.settings import HandoffSettings

    root = Path(__file__).resolve().parent.parent
    for name in list(__import__("os").environ):
        if name.startswith("EMAIL_"):
            monkeypatch.delenv(name)

    prefix = f"test-email-{uuid4().hex[:8]}"

    async def make(handoff: dict | None = None, name: str = "a", redis: bool = False, **env: str):
        """The app; `redis`: on the session's redis-server (calling it twice: two workers on the same data)."""
        for key, value in {**dovecot.env(), **smtp_catcher.env(), "EMAIL_POLL_INTERVAL_S": "5",
                           "EMAIL_RETRY_BASE_S": "0.05", "WIDGET_UPLOAD_DIR": str(tmp_path / "uploads"),
                           **env}.items():
            monkeypatch.setenv(key, value)
        settings = ServerSettings.for_project(root, model_path=starter_model, db_path=tmp_path / f"{name}.db")
        if redis:
            settings.redis_url = request.getfixturevalue("redis_url")
            settings.endpoints.tracker_store = StoreEndpoint(type="redis", key_prefix=prefix)
        app = create_app(settings)
        app[HANDOFF_SETTINGS] = HandoffSettings(**{"hours": {"daily": "24h"}, "auto_assign": False, "tick_s": 0.1,
                                                   **(handoff or {})})
        return await aiohttp_client(app)

    return make
