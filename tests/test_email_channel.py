"""The e-mail channel end to end, against a real IMAP server (dovecot, started by the test) and a real SMTP
server (aiosmtpd) that catches what kefu sends: mail is put into the mailbox by IMAP APPEND, as a mail server
delivers it, and the shopper's view is the mail that arrives at the catcher."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from email.utils import make_msgid

from bot.app_keys import STORES
from tests.channels.conftest import agent_login
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


async def api(client, method: str, path: str, headers: dict[str, str], body: dict | None = None) -> dict:
    resp = await client.request(method, path, json=body, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def test_an_english_mail_asking_for_a_person_reaches_the_console_and_the_agents_reply_is_threaded(
        email_app, dovecot, smtp_catcher):
    client = await email_app()
    li = await agent_login(client, "amy", "Amy")
    question = shopper_mail("Bob Smith <bob@example.com>", "Broken charger",
                            "Hello,\n\nI'd like to talk to a person please, my charger arrived broken.\n\nThanks,\nBob",
                            message_id="<bob-1@example.com>")
    await dovecot.append(question)
    queue = await until(lambda: api(client, "GET", "/api/agent/queue", li))
    [(cid, channel, language)] = [(q["conversation_id"], q["channel"], q["language"]) for q in queue]
    assert cid.startswith("email:") and channel == "email" and language == "en"
    view = await api(client, "GET", f"/api/agent/conversations/{cid}", li)
    assert view["details"]["email"]["address"] == "bob@example.com" and view["reason"] == "explicit_request"
    shown = users(view["events"])[0]
    assert shown["text"] == "Hello,\n\nI'd like to talk to a person please, my charger arrived broken."
    assert shown["metadata"]["email"]["subject"] == "Broken charger"

    await api(client, "POST", f"/api/agent/conversations/{cid}/claim", li)
    await api(client, "POST", f"/api/agent/conversations/{cid}/messages", li,
              {"text": "Hi Bob, I'm sorry about that. We'll send a new charger today."})
    [reply] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("bob@example.com"))
    assert reply["In-Reply-To"] == "<bob-1@example.com>" and "<bob-1@example.com>" in reply["References"]
    assert reply["Subject"].startswith("Re: Broken charger [#") and not reply["Auto-Submitted"]
    text = reply.text()
    assert text.startswith("Hi Bob, I'm sorry about that. We'll send a new charger today.")
    assert "\n-- \nAmy\n" in text  # the agent's name and the shop's signature
    assert "wrote:\n> Hello," in text and "> I'd like to talk to a person please" in text  # the original quoted
    assert "<blockquote" in (reply.html() or "") and "new charger today" in (reply.html() or "")

    # Bob answers the agent's mail: the same conversation, for the agent (no bot mail)
    await dovecot.append(shopper_mail("Bob Smith <bob@example.com>", f"Re: {reply['Subject']}",
                                      f"Great, thank you!\n\nOn Sat, Amy <{USER}> wrote:\n> Hi Bob",
                                      in_reply_to=reply["Message-ID"],
                                      references=f"<bob-1@example.com> {reply['Message-ID']}"))

    async def answered() -> list[dict]:
        events = (await api(client, "GET", f"/api/agent/conversations/{cid}", li))["events"]
        return [e["text"] for e in users(events)][1:]

    assert await until(answered) == ["Great, thank you!"]
    await asyncio.sleep(0.5)
    assert len(smtp_catcher.to("bob@example.com")) == 1  # only the agent's reply: the bot stayed out of it
    assert len(await email_conversations(client)) == 1


async def test_automatic_mail_and_kefus_own_reply_are_recorded_but_never_answered(email_app, dovecot, smtp_catcher):
    client = await email_app()
    await dovecot.append(shopper_mail("Li <li@example.cn>", "运费", "请问运费多少？", message_id="<li-1@example.cn>"))
    [own] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("li@example.cn"))
    bounce = shopper_mail("Mail Delivery System <MAILER-DAEMON@mx.example.net>", "Undelivered Mail Returned to Sender",
                          "This is the mail system. Your message could not be delivered.")
    away = shopper_mail("Ann <ann@example.com>", "Out of Office: your question",
                        "I am away until Monday. How long does shipping take?")
    autosubmitted = shopper_mail("Shop Robot <robot@example.org>", "How long does shipping take?",
                                 "How long does shipping take?", Auto_Submitted="auto-generated")
    bulk = shopper_mail("News <news@example.org>", "Shipping news", "How long does shipping take?", Precedence="bulk")
    await dovecot.append(own.raw, bounce, away, autosubmitted, bulk)  # kefu's own answer comes back, too

    async def recorded() -> list[str]:
        found = [users(events) for events in (await email_conversations(client)).values()]
        reasons = [u["metadata"]["email"].get("automatic") for events in found for u in events]
        return sorted(r for r in reasons if r) if len(reasons) >= 6 else []

    assert await until(recorded) == ["auto_submitted", "mailer_daemon", "out_of_office", "own_address", "precedence"]
    await asyncio.sleep(1.0)
    assert [c["To"] for c in smtp_catcher.caught] == [own["To"]]  # nothing answered but the first question
    assert await dovecot.unseen() == 0
