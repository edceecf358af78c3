"""`kefu run --workers N` as a shop runs it, on a copy of the pizza bot: N processes forked from one loaded model
answer on one port and share the conversations (a private redis-server when no Redis is given), a worker that
dies is replaced, the private Redis too, and stopping the supervisor stops everything; mistakes end in one
line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import FIXTURE, KEFU, free_port, kefu, one_error_line

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workers") / "pizzabot"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("models", "results"))
    kefu(root, "train")
    return root


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def workers_of(pid: int) -> list[int]:
    return [child for child in children(pid) if "redis-server" not in command_of(child)]


def redis_of(pid: int) -> list[int]:
    return [child for child in children(pid) if "redis-server" in command_of(child)]


def say(port: int, sender: str, text: str) -> list[dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/rest/webhook", method="POST",
                                     data=json.dumps({"sender": sender, "message": text}).encode(),
                                     headers={"Content-Type": "application/json", "Connection": "close"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def user_turns(port: int, sender: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/conversations/{sender}/tracker", timeout=30) as response:
        return sum(1 for event in json.loads(response.read())["events"] if event["event"] == "user")


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_workers_share_one_port_and_the_conversations_and_are_replaced_when_they_die(project: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    supervisor = subprocess.Popen([KEFU, "run", "--workers", "2", "--port", str(port)], cwd=project, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: len(workers_of(supervisor.pid)) == 2 and say(port, "warmup", "hi") is not None)
        wait_for(lambda: all(say(port, f"w{i}", "hi") is not None for i in range(4)))  # both workers up
        first = workers_of(supervisor.pid)
        assert len(redis_of(supervisor.pid)) == 1  # no REDIS_URL: a private one

        # one conversation, each message on a new connection (the kernel spreads them over both workers)
        for _ in range(8):
            assert say(port, "shopper", "hello")
        assert user_turns(port, "shopper") == 8

        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(workers_of(supervisor.pid)) == 2 and first[0] not in workers_of(supervisor.pid))
        wait_for(lambda: say(port, "shopper", "hello") is not None)
        assert user_turns(port, "shopper") == 9  # nothing lost with the worker

        # the private Redis dies: started again with its data
        os.kill(redis_of(supervisor.pid)[0], signal.SIGKILL)
        wait_for(lambda: say(port, "shopper", "hello") is not None)
        assert user_turns(port, "shopper") >= 9
        assert (project / "kefu-redis").is_dir()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        output = supervisor.communicate(timeout=60)[0]
    assert supervisor.returncode == 0, output[-3000:]
    assert "worker 1 exited" in output or "worker 2 exited" in output
    with pytest.raises(OSError):  # nothing is left listening
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_more_workers_without_redis_say_what_they_need(project: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PATH"] = str(tmp_path)  # no redis-server to start
    model = next((project / "models").glob("*.tar.gz"))
    result = subprocess.run([KEFU, "run", "--workers", "2", "--port", str(free_port()), "-m", str(model)],
                            cwd=project, env=env, capture_output=True, text=True, timeout=120)
    one_error_line(result, "REDIS_URL", "redis-server")


def test_workers_on_a_port_in_use_say_so_at_once(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = kefu(project, "run", "--workers", "2", "--port", str(port), timeout=120)
    one_error_line(result, f"127.0.0.1:{port}", "--port")
