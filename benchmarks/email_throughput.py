"""How many inbound mails per second one kefu worker reads, answers and stores, and what the bot costs per mail,
against the real test servers: dovecot (IMAP, on a free port with a throw-away mailbox) and an aiosmtpd server
that catches the answers, both as the e-mail tests start them (tests/mailservers.py).

N shopper mails (the starter shop's questions in English and Chinese, one sender each) are put into the mailbox
first; then one worker (the real app, SQLite) starts, and the clock runs until every mail is read, stored,
answered (a reply mail taken by the SMTP server, or a handoff to the queue) and marked read.

Run: `.venv/bin/python benchmarks/email_throughput.py [--mails 200] [--model models/X.tar.gz]` (without --model:
the newest archive in models/, else one is trained first).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app_keys import STORES  # noqa: E402
from bot.server import ServerSettings, create_app  # noqa: E402
from handoff.app_keys import HANDOFF_SETTINGS  # noqa: E402
from handoff.settings import HandoffSettings  # noqa: E402
from tests.mailservers import USER, Dovecot, SmtpCatcher  # noqa: E402

QUESTIONS = [
    "How long does shipping take?", "How much is shipping?", "Can I return this item?", "When do I get my refund?",
    "Which payment methods do you accept?", "Do you ship abroad?", "Can I get an invoice?",
    "请问多久发货？", "运费多少钱？", "可以退货吗？", "退款多久到账？", "支持哪些付款方式？", "能开发票吗？",
    "I want to talk to a person about a broken item.", "我要转人工，东西坏了",
]


def mail(i: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Shopper {i} <shopper{i}@example.com>"
    message["To"] = USER
    message["Subject"] = "Question" if i % 2 else "咨询"
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(f"Hello,\n\n{QUESTIONS[i % len(QUESTIONS)]}\n\nThanks")
    return message


def newest_model(work: Path) -> Path:
    found = sorted((ROOT / "models").glob("*.tar.gz"))
    if found:
        return found[-1]
    from bot.formats.project import load_project
    from bot.model import train

    print("no model in models/: training one (a few minutes)")
    project = load_project(ROOT / "config.yml", ROOT / "domain.yml", [ROOT / "data"])
    return train(project, work / "models", progress=lambda _: None)


async def measure(mails: int, model: Path, work: Path) -> None:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    dovecot = Dovecot(binary, work / "dovecot")
    dovecot.start()
    catcher = SmtpCatcher()
    catcher.controller.start()
    runner = None
    try:
        await dovecot.append(*(mail(i) for i in range(mails)))
        for key, value in {**dovecot.env(), **catcher.env(), "EMAIL_POLL_INTERVAL_S": "5",
                           "WIDGET_UPLOAD_DIR": str(work / "uploads")}.items():
            os.environ[key] = value
        settings = ServerSettings.for_project(ROOT, model_path=model, db_path=work / "kefu.db")
        app = create_app(settings)
        app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"}, auto_assign=False)
        runner = web.AppRunner(app)
        await runner.setup()  # the model is loaded and the reader connects here; the clock starts after
        cpu, started = time.process_time(), time.perf_counter()
        while await dovecot.unseen() > 0:
            await asyncio.sleep(0.2)
        read_s = time.perf_counter() - started
        handed_over = 0
        trackers = app[STORES].trackers
        conversations = [c["conversation_id"] for c in await trackers.conversations(limit=mails * 2)
                         if c["conversation_id"].startswith("email:")]
        for cid in conversations:
            if any(e.get("event") == "handoff_requested" for e in await trackers.events(cid)):
                handed_over += 1
        deadline = time.monotonic() + 60
        while len(catcher.caught) < len(conversations) - handed_over and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        answered = len(catcher.caught)
        print(f"mails                 {mails} (one worker, SQLite, dovecot IMAP IDLE, aiosmtpd SMTP on 127.0.0.1)")
        print(f"stored conversations  {len(conversations)}; bot answered by mail {answered}; "
              f"to the queue {handed_over}")
        print(f"all read and stored   {read_s:6.2f} s")
        print(f"all answered          {elapsed:6.2f} s  ->  {mails / elapsed:6.1f} inbound mails/s")
        print(f"bot cost per mail     {1000 * cpu_s / mails:6.1f} ms CPU in this process "
              f"({1000 * elapsed / mails:.1f} ms wall); no paid API is called")
    finally:
        if runner is not None:
            await runner.cleanup()
        catcher.controller.stop()
        dovecot.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-email-bench-") as tmp:
        work = Path(tmp)
        model = args.model or newest_model(work)
        asyncio.run(measure(args.mails, model, work))


if __name__ == "__main__":
    main()
