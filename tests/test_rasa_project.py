"""A plain Rasa 3.x project (forms, validation action, retrieval intents, lookups, synonyms) trains and
passes its own test stories with `kefu train` / `kefu test`, and training keeps the previous model safe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pizzabot"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("pizzabot")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def trained(project):
    import os

    cwd = os.getcwd()
    os.chdir(project)
    try:
        assert main(["train"]) == 0
    finally:
        os.chdir(cwd)
    return project


def test_unchanged_project_is_not_retrained(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    before = sorted((trained / "models").glob("*.tar.gz"))
    assert main(["train"]) == 0
    assert "Nothing changed" in capsys.readouterr().out
    assert sorted((trained / "models").glob("*.tar.gz")) == before


def test_rasa_test_stories_pass_and_reports_are_written(trained, monkeypatch):
    monkeypatch.chdir(trained)
    assert main(["test", "--fail-on-prediction-errors", "--out", "results"]) == 0
    report = json.loads((trained / "results" / "story_report.json").read_text())
    assert report["failed"] == 0 and report["passed"] == 4
    intents = json.loads((trained / "results" / "intent_report.json").read_text())
    assert intents["accuracy"] == 1.0
    assert (trained / "results" / "intent_confusion_matrix.png").stat().st_size > 1000
    assert "all good" in (trained / "results" / "failed_test_stories.yml").read_text()


def test_failing_story_exits_non_zero_with_the_flag(trained, monkeypatch, tmp_path):
    monkeypatch.chdir(trained)
    bad = tmp_path / "bad_stories.yml"
    bad.write_text("stories:\n- story: wrong\n  steps:\n  - user: |\n      hello\n    intent: greet\n"
                   "  - action: utter_goodbye\n")
    assert main(["test", "--stories", str(bad), "--out", str(tmp_path / "r")]) == 0
    assert main(["test", "--stories", str(bad), "--out", str(tmp_path / "r"), "--fail-on-prediction-errors"]) == 1
    failed = (tmp_path / "r" / "failed_test_stories.yml").read_text()
    assert "predicted: utter_greet" in failed


def test_broken_data_fails_training_with_location_and_keeps_the_model(trained, monkeypatch, capsys, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    monkeypatch.chdir(broken)
    before = sorted((broken / "models").glob("*.tar.gz"))
    (broken / "data" / "rules.yml").write_text("rules:\n- rule: x\n  steps:\n  - intent: greet\n    - action: oops\n")
    assert main(["train", "--force"]) == 1
    err = capsys.readouterr().err
    assert "rules.yml:" in err and "invalid YAML" in err
    assert sorted((broken / "models").glob("*.tar.gz")) == before


def test_corrupt_model_archive_gives_a_clear_error(trained, monkeypatch, capsys, tmp_path):
    archive = next((trained / "models").glob("*.tar.gz"))
    half = tmp_path / "half.tar.gz"
    half.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    monkeypatch.chdir(trained)
    assert main(["test", "--model", str(half), "--out", str(tmp_path / "r")]) == 1
    assert "corrupt or half-written" in capsys.readouterr().err


def test_shell_chats_in_the_terminal(trained):
    import subprocess
    import sys

    kefu = Path(sys.executable).parent / "kefu"
    result = subprocess.run([str(kefu), "shell"], cwd=trained, input="hello\n/stop\n", capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Hello! Fancy a pizza?" in result.stdout


def test_same_actions_run_on_a_rasa_action_server(trained, tmp_path):
    """`kefu actions` serves actions/ with Rasa's protocol; endpoints.yml points the bot at it."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project = tmp_path / "remote"
    shutil.copytree(trained, project)
    shutil.rmtree(project / "actions")  # the bot itself must not find them in-process
    (project / "endpoints.yml").write_text(f"action_endpoint:\n  url: http://127.0.0.1:{port}/webhook\n")
    kefu = Path(sys.executable).parent / "kefu"
    server = subprocess.Popen([str(kefu), "actions", "--port", str(port)], cwd=trained,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        result = subprocess.run([str(kefu), "test", "--fail-on-prediction-errors", "--out", "results"],
                                cwd=project, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "4 passed, 0 failed" in result.stdout
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_trained_model_keeps_rasa_fallback_thresholds(trained):
    from bot.model import load_model

    archive = sorted((trained / "models").glob("*.tar.gz"))[-1]
    thresholds = load_model(archive).config.effective_thresholds()
    assert thresholds.intent == 0.3 and thresholds.ambiguity == 0.05


def test_stories_also_pass_talking_to_the_bot_with_its_actions(trained, monkeypatch):
    """`--run-actions`: the same stories, turn by turn through the running bot and its in-process actions."""
    monkeypatch.chdir(trained)
    assert main(["test", "--run-actions", "--fail-on-prediction-errors", "--out", "results-live"]) == 0
    report = json.loads((trained / "results-live" / "story_report.json").read_text())
    assert report["passed"] == 4
