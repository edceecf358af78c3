"""`kefu backup` while the store is being written, `kefu restore` into a fresh place: the same conversations come
back. A restore never replaces a store by accident (--yes) nor one a server is serving."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from store_writer import Writer, document

from bot.stores import create_stores

ROOT = Path(__file__).resolve().parent.parent


def kefu(project: Path, *args: str) -> subprocess.CompletedProcess:
    """This checkout's `kefu` (the installed script may be another checkout's) in `project`, on its SQLite store."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return line


async def snapshot(db: Path, conversations: list[str]) -> dict[str, list[dict]]:
    stores = create_stores(None, db)
    try:
        return {cid: await stores.trackers.events(cid) for cid in conversations}
    finally:
        await stores.close()


async def test_backup_while_a_writer_is_active_restores_the_same_data(tmp_path: Path) -> None:
    live, fresh = tmp_path / "live", tmp_path / "fresh"
    live.mkdir()
    fresh.mkdir()
    stores = create_stores(None, live / "kefu.db")
    shoppers = [f"web:shopper-{i}" for i in range(20)]
    try:
        for i, cid in enumerate(shoppers):
            await stores.trackers.append(cid, [{"event": "user", "text": f"我的订单 KF{i:04d} 到哪了？"},
                                               {"event": "bot", "text": f"answer {i}"}])
            await stores.trackers.set_meta(cid, channel="widget", language="zh")
        await stores.kv.set("agent:li", {"username": "li", "role": "admin"})
    finally:
        await stores.close()
    before = await snapshot(live / "kefu.db", shoppers)

    writer = Writer(live / "kefu.db")
    try:
        writer.wait_for(50)
        backed_up = kefu(live, "backup", str(tmp_path / "kefu-backup.db"))
        acked_before_backup_ended = list(writer.acked)
        writer.wait_for(20)  # still writing after the backup: the backup did not stop it
    finally:
        writer.kill()
    assert backed_up.returncode == 0, backed_up.stderr
    assert backed_up.stdout.startswith(f"Backed up kefu.db to {tmp_path / 'kefu-backup.db'}: ")
    assert not list(tmp_path.glob("*.partial"))

    restored = kefu(fresh, "restore", str(tmp_path / "kefu-backup.db"))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("Restored kefu.db from ")

    with sqlite3.connect(fresh / "kefu.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert await snapshot(fresh / "kefu.db", shoppers) == before
    stores = create_stores(None, fresh / "kefu.db")
    try:
        assert await stores.kv.get("agent:li") == {"username": "li", "role": "admin"}
        for n in acked_before_backup_ended:  # acknowledged before the snapshot was taken: in it
            assert await stores.kv.get(f"doc:{n}") == document(n)
        for i in range(7):  # whatever the writer had done by then: whole turns, no gaps
            events = await stores.trackers.events(f"c{i}")
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finally:
        await stores.close()


HOLDER = """
import sys, time
from pathlib import Path
from bot.stores.serving_lock import serving
with serving(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


async def test_restore_asks_before_replacing_a_store_and_refuses_a_served_one(tmp_path: Path) -> None:
    stores = create_stores(None, tmp_path / "kefu.db")
    try:
        await stores.trackers.append("web:old", [{"event": "user", "text": "the backed-up one"}])
    finally:
        await stores.close()
    assert kefu(tmp_path, "backup", "backup.db").returncode == 0
    stores = create_stores(None, tmp_path / "kefu.db")
    try:
        await stores.trackers.append("web:new", [{"event": "user", "text": "written after the backup"}])
    finally:
        await stores.close()

    line = error_line(kefu(tmp_path, "restore", "backup.db"))
    assert "exists (2 conversations" in line and "--yes" in line and "nothing changed" in line
    assert len((await snapshot(tmp_path / "kefu.db", ["web:new"]))["web:new"]) == 1

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "kefu.db")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        line = error_line(kefu(tmp_path, "restore", "backup.db", "--yes"))
        assert f"(pid {holder.pid}) is serving" in line and "stop it" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert len((await snapshot(tmp_path / "kefu.db", ["web:new"]))["web:new"]) == 1

    assert kefu(tmp_path, "restore", "backup.db", "--yes").returncode == 0
    after = await snapshot(tmp_path / "kefu.db", ["web:old", "web:new"])
    assert [e["text"] for e in after["web:old"]] == ["the backed-up one"] and after["web:new"] == []


def test_a_file_that_is_not_a_kefu_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    line = error_line(kefu(tmp_path, "restore", "notes.txt", "--yes"))
    assert "notes.txt is not a readable SQLite file" in line
    assert not (tmp_path / "kefu.db").exists()
    line = error_line(kefu(tmp_path, "backup", "b.db"))
    assert "no SQLite store at" in line and not (tmp_path / "b.db").exists()


def test_backup_refuses_a_redis_store(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text("tracker_store:\n  type: redis\n  url: redis://127.0.0.1:1/0\n")
    line = error_line(kefu(tmp_path, "backup", "b.db"))
    assert "the store is Redis" in line and "README" in line
