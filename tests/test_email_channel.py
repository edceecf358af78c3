"""The e-mail channel end to end, against a real IMAP server (dovecot, started by the test) and a real SMTP
server (aiosmtpd) that catches what kefu sends: mail is put into the mailbox by IMAP APPEND, as a mail server
delivers it, and the shopper's view is the mail that arrives at the catcher."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from email.utils import make_msgid

from bot.app_keys import STORES
from tests.mailservers import USER


def shopper_mail(sender: str, subject: str, body: str, message_id: str | None = None,
                 in_reply_to: str | None = None, references: str | None = None, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = f"Shop <{USER}>"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or make_msgid(domain="example.cn")
    mail["Date"] = "Sat, 05 Dec 2026 10:00:00 +0800"
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


async def until(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return result


async def email_conversations(client) -> dict[str, list[dict]]:
    trackers = client.app[STORES].trackers
    found = {}
    for conversation in await trackers.conversations(limit=500):
        cid = conversation["conversation_id"]
        if cid.startswith("email:"):
            found[cid] = await trackers.events(cid)
    return found


def users(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "user"]


async def test_a_chinese_mail_about_shipping_gets_a_chinese_answer_in_its_thread(email_app, dovecot, smtp_catcher):
    client = await email_app()
    question = shopper_mail("张三 <zhang@example.cn>", "关于发货", "你好，请问下单后一般多久发货？\n\n张三\n",
                            message_id="<q1@example.cn>")
    await dovecot.append(question)
    [answer] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("zhang@example.cn"))
    assert answer["In-Reply-To"] == "<q1@example.cn>" and "<q1@example.cn>" in answer["References"]
    assert answer["Subject"].startswith("回复: 关于发货 [#")
    assert USER in answer["From"] and answer["Auto-Submitted"] == "auto-replied"
    text = answer.text()
    assert "发货" in text and "转人工" in text  # the answer, in Chinese, and how to reach a person
    assert "> 你好，请问下单后一般多久发货？" in text  # the question quoted below
    assert answer.html() and "<blockquote" in answer.html()
    assert await dovecot.unseen() == 0  # handled: marked read

    # the shopper answers the answer: the same conversation, and the next answer continues the thread
    follow = shopper_mail("张三 <zhang@example.cn>", answer["Subject"].replace("回复: ", "Re: "),
                          f"那运费多少？\n\n在 2026年12月5日，客服 <{USER}> 写道：\n> {text[:20]}",
                          in_reply_to=answer["Message-ID"], references=f"<q1@example.cn> {answer['Message-ID']}")
    await dovecot.append(follow)
    second = (await smtp_catcher.wait_for(lambda: smtp_catcher.to("zhang@example.cn")[1:]))[0]
    conversations = await email_conversations(client)
    assert len(conversations) == 1
    [events] = conversations.values()
    assert [e["text"] for e in users(events)] == ["你好，请问下单后一般多久发货？", "那运费多少？"]
    assert users(events)[1]["metadata"]["email"]["original"].startswith("那运费多少？\n\n在 2026年12月5日")
    assert second["In-Reply-To"] == follow["Message-ID"] and answer["Message-ID"] in second["References"]
    assert "运费" in second.text()
