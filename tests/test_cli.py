"""The `kefu` command as a newcomer meets it, run as a real process on a copy of the small pizza bot: training shows
each stage with its time, `kefu run` says it is serving only once the port answers, and ordinary mistakes end in one
line starting with "Error:" (never a traceback)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pizzabot"
KEFU = str(Path(sys.executable).parent / "kefu")


def kefu(project: Path, *args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([KEFU, *args], cwd=project, input=stdin, capture_output=True, text=True, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def one_error_line(result: subprocess.CompletedProcess, *words: str) -> str:
    """The single "Error: …" line of a failed command, after checking it carries `words` and no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert all(w in errors[0] for w in words), errors[0]
    return errors[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The pizza bot, trained once by `kefu train` (its output is the first test's)."""
    root = tmp_path_factory.mktemp("cli") / "pizzabot"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("models", "results"))
    root.joinpath("trained.log").write_text(kefu(root, "train").stdout, encoding="utf-8")
    return root


def test_training_prints_each_stage_with_its_time(project: Path):
    out = project.joinpath("trained.log").read_text(encoding="utf-8")
    lines = out.splitlines()
    assert lines[0].startswith("Training the bot") and "minutes" in lines[0]
    stamped = [line for line in lines if line.startswith("[")]
    assert any("training NLU" in line for line in stamped) and any("indexing" in line for line in stamped)
    seconds = [float(line[1:].split("s]")[0]) for line in stamped]
    assert seconds == sorted(seconds)  # time since training began, as it goes
    summary = lines[-1]
    assert summary.startswith("Your bot is trained in ") and "training NLU… " in summary and "indexing" in summary
    assert summary.rstrip().endswith(".tar.gz")


def test_kefu_run_says_serving_only_when_the_port_answers(project: Path):
    port = free_port()
    server = subprocess.Popen([KEFU, "run", "--port", str(port)], cwd=project, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        said = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line, f"kefu run stopped: {said}"
            said.append(line)
            if line.startswith("kefu serving on"):
                break
        assert any(line.startswith("Loading the model") for line in said[:-1])  # what it does meanwhile
        assert said[-1].startswith(f"kefu serving on http://127.0.0.1:{port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:  # at once, no retry
            assert resp.status == 200

        # the same project again (its SQLite store is served): one line saying what to do
        again = kefu(project, "run", "--port", str(free_port()))
        one_error_line(again, "already serving", "REDIS_URL")
        # another project on the same port: one line saying what to do
        other = project.parent / "other"
        if not other.exists():
            shutil.copytree(project, other, ignore=shutil.ignore_patterns("kefu.db*", "results", "uploads"))
        again = kefu(other, "run", "--port", str(port))
        one_error_line(again, f"127.0.0.1:{port}", "--port")
        assert "kefu serving on" not in again.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ordinary_mistakes_end_in_one_line(project: Path, tmp_path: Path):
    # no terminal to ask for a password, and no --password-stdin
    one_error_line(kefu(project, "agents", "add", "bob", timeout=60), "--password-stdin")
    # a model that is not there: never "serving"
    missing = kefu(project, "run", "--model", "nope.tar.gz", "--port", str(free_port()), timeout=120)
    one_error_line(missing, "nope.tar.gz")
    assert "kefu serving on" not in missing.stdout
    # files that are not there, YAML that does not parse (with file and line), a bad flag
    one_error_line(kefu(project, "train", "--config", "nope.yml", timeout=60), "nope.yml")
    one_error_line(kefu(tmp_path, "data", "validate", timeout=60), "domain.yml")
    broken = shutil.copytree(project, tmp_path / "broken", ignore=shutil.ignore_patterns("models"))
    broken.joinpath("data", "nlu.yml").write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: [\n')
    one_error_line(kefu(broken, "data", "validate", timeout=60), "data/nlu.yml:")
    bad_flag = kefu(project, "run", "--port", "eighty", timeout=60)
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr and "invalid int value" in bad_flag.stderr
