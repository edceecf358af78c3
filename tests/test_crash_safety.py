"""The embedded store under `kill -9`: a writer process is killed in the middle of its writes, again and again, and
every write it had been told was stored is there afterwards, in a file SQLite calls sound. And one SQLite file is
served by one `kefu run` only."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from store_writer import Writer, document

from bot.stores import create_stores
from bot.stores.serving_lock import StoreInUse, serving, serving_pid

ROOT = Path(__file__).resolve().parent.parent

def run_writer_and_kill(db: Path, start: int, acknowledged_before_kill: int) -> list[int]:
    """Start a writer, SIGKILL it once it has acknowledged that many writes; every step it acknowledged."""
    writer = Writer(db, start)
    try:
        writer.wait_for(acknowledged_before_kill)
    finally:
        acked = writer.kill()  # mid-stream: it is writing the next step right now
    return acked


async def test_sqlite_keeps_every_acknowledged_write_across_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "kefu.db"
    acked: list[int] = []
    for _round in range(3):  # each round starts on the file the previous writer was killed on
        acked += run_writer_and_kill(db, start=max(acked, default=0) + 1000, acknowledged_before_kill=150)

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    stores = create_stores(None, db)
    try:
        texts: dict[str, set[str]] = {}
        for i in range(7):
            events = await stores.trackers.events(f"c{i}")
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # gapless, no half turn
            texts[f"c{i}"] = {e["text"] for e in events}
        lost = [n for n in acked if f"message {n}" not in texts[f"c{n % 7}"]]
        lost_docs = [n for n in acked if await stores.kv.get(f"doc:{n}") != document(n)]
        assert lost == [] and lost_docs == []
        assert len(acked) >= 450
        # and the file takes new writes after the crashes
        stored = await stores.trackers.append("c0", [{"event": "user", "text": "after"}])
        assert stored[0]["seq"] == len(texts["c0"]) + 1
    finally:
        await stores.close()


# -- one server per SQLite file ----------------------------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from bot.stores.serving_lock import serving
with serving(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def kefu(project: Path, *args: str) -> subprocess.CompletedProcess:
    """This checkout's `kefu` (the installed script may be another checkout's) in `project`, on its SQLite store."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_the_serving_lock_names_its_holder_and_ends_with_its_process(tmp_path: Path) -> None:
    db = tmp_path / "kefu.db"
    assert serving_pid(db) is None
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert serving_pid(db) == holder.pid
        refused = rf"another kefu \(pid {holder.pid}\) is already serving .*kefu.db"
        with pytest.raises(StoreInUse, match=refused), serving(db):
            pass
        holder.send_signal(signal.SIGKILL)  # no clean-up: the lock still ends with the process
        holder.wait(timeout=10)
        assert serving_pid(db) is None
        with serving(db):
            assert serving_pid(db) == os.getpid()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_second_kefu_run_on_the_same_sqlite_file_stops_with_one_clear_line(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "kefu.db")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        result = kefu(tmp_path, "run", "--port", "1", "--model", str(tmp_path / "none.tar.gz"))
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(errors) == 1 and f"another kefu (pid {holder.pid}) is already serving" in errors[0]
        assert "REDIS_URL" in errors[0]
    finally:
        holder.kill()
        holder.wait(timeout=10)

