"""The e-mail channel end to end, against a real IMAP server (dovecot, started by the test) and a real SMTP
server (aiosmtpd) that catches what kefu sends: mail is put into the mailbox by IMAP APPEND, as a mail server
delivers it, and the shopper's view is the mail that arrives at the catcher."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import pytest

from bot.app_keys import STORES
from handoff.app_keys import HANDOFF
from tests.channels.conftest import (
    AGENT_PASSWORD,
    LogCapture,
    agent_login,
)
from tests.mailservers import USER, free_port


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


async def admin_login(client) -> dict[str, str]:
    await client.app[HANDOFF].agents.add("boss", AGENT_PASSWORD, name="Boss", role="admin")
    login = await client.post("/api/agent/login", json={"username": "boss", "password": AGENT_PASSWORD})
    return {"Authorization": f"Bearer {(await login.json())['token']}"}


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


def pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size - 9)


async def test_a_5_mb_attachment_is_kept_like_a_chat_upload_and_a_50_mb_one_is_refused_politely(
        email_app, dovecot, smtp_catcher, tmp_path):
    client = await email_app()
    receipt = pdf(5 * 1024 * 1024)
    mail = shopper_mail("Cara <cara@example.com>", "Receipt", "How long does a refund take?")
    mail.add_attachment(receipt, maintype="application", subtype="pdf", filename="receipt.pdf")
    huge = shopper_mail("Dan <dan@example.com>", "Video of the fault", "See the attached video of the fault.")
    huge.add_attachment(os.urandom(50 * 1024 * 1024), maintype="application", subtype="octet-stream",
                        filename="fault.mp4")
    await dovecot.append(mail, huge)

    [refusal] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("dan@example.com"), timeout_s=60)
    assert "could not accept" in refusal.text() and "25 MB" in refusal.text()
    assert refusal["In-Reply-To"] == huge["Message-ID"]
    conversations = (await email_conversations(client)).values()
    first = {users(events)[0]["metadata"]["sender"]: users(events)[0] for events in conversations}
    cara, dan = first["cara@example.com"], first["dan@example.com"]
    [kept] = cara["metadata"]["attachments"]
    assert (kept["name"], kept["mime"], kept["size"]) == ("receipt.pdf", "application/pdf", len(receipt))
    assert (tmp_path / "uploads" / kept["id"]).read_bytes() == receipt
    download = await client.get(kept["url"])
    assert download.status == 200 and await download.read() == receipt  # the console opens it like a chat upload
    assert dan["metadata"]["email"]["complete"] is False and dan["metadata"]["email"]["size"] > 50 * 1024 * 1024
    assert await dovecot.unseen() == 0


async def test_the_imap_server_restarting_midway_loses_no_mail(email_app, dovecot, smtp_catcher):
    client = await email_app()
    senders = [f"shopper{i}@example.com" for i in range(8)]
    await dovecot.append(*(shopper_mail(f"Shopper {i} <{s}>", "Shipping", "How long does shipping take?")
                           for i, s in enumerate(senders)))
    await until(lambda: email_conversations(client))  # the reader is under way...
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, dovecot.stop)  # ...when the server goes away
    await asyncio.sleep(1.0)
    await loop.run_in_executor(None, dovecot.start)

    async def everyone_answered() -> bool:
        return all(smtp_catcher.to(s) for s in senders)

    await until(everyone_answered, timeout_s=90)
    await until(lambda: _none_unseen(dovecot), timeout_s=30)
    assert sorted(len(smtp_catcher.to(s)) for s in senders) == [1] * 8  # each answered once
    conversations = await email_conversations(client)
    assert sorted(users(events)[0]["metadata"]["sender"] for events in conversations.values()) == sorted(senders)
    assert all(len(users(events)) == 1 for events in conversations.values())


async def _none_unseen(dovecot) -> bool:
    return await dovecot.unseen() == 0


BROKEN_MIME = (b"From: Wang <wang@example.cn>\r\nTo: service@shop.test\r\nSubject: =?x-unknown?B?5Lit5paH?=\r\n"
               b"Message-ID: <broken-1@example.cn>\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"zzz\"\r\n\r\n"
               b"--zzz\r\nContent-Type: text/plain; charset=\"x-no-such-charset\"\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"my order =E6=88=91=E7=9A=84=E8=AE=A2=E5=8D=95 =ZZ\r\n"
               b"--zzz\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n@@@@ not base64\r\n")  # no closing boundary
WRONG_CHARSET = (b"From: Zhou <zhou@example.cn>\r\nTo: service@shop.test\r\nSubject: order\r\n"
                 b"Message-ID: <gbk-1@example.cn>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n") + \
    "我的订单在哪里？".encode("gbk")  # GBK bytes in a mail that says UTF-8


async def test_broken_encodings_and_malformed_mime_are_kept_and_shown_and_the_reader_goes_on(
        email_app, dovecot, smtp_catcher):
    client = await email_app()
    await dovecot.append(BROKEN_MIME, WRONG_CHARSET,
                         shopper_mail("Eve <eve@example.com>", "Shipping", "How long does shipping take?"))
    await smtp_catcher.wait_for(lambda: smtp_catcher.to("eve@example.com"))  # the mail after them is answered

    async def kept() -> dict[str, dict]:
        found = {u["metadata"]["sender"]: u for events in (await email_conversations(client)).values()
                 for u in users(events)}
        return found if len(found) == 3 else {}

    found = await until(kept)
    broken, wrong = found["wang@example.cn"], found["zhou@example.cn"]
    assert broken["text"].startswith("my order 我的订单") and broken["metadata"]["email"]["defects"]
    assert "我的订单在哪里" in wrong["text"]  # read as what it is (GB 18030) rather than replacement characters
    assert await dovecot.unseen() == 0


async def test_a_mail_the_smtp_server_refuses_is_retried_and_finally_shown_to_the_agent(
        email_app, dovecot, smtp_catcher):
    client = await email_app(EMAIL_SEND_ATTEMPTS="3")
    li = await admin_login(client)  # a conversation the bot answered: the admins see everything
    smtp_catcher.refuse_next = 2  # busy twice, then takes it
    await dovecot.append(shopper_mail("Fay <fay@example.com>", "Shipping", "How long does shipping take?"))
    [answer] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("fay@example.com"))
    assert smtp_catcher.attempts == 3 and "shipping" in answer.text().lower()

    smtp_catcher.refuse = True  # now down for good
    await dovecot.append(shopper_mail("Gil <gil@example.com>", "Shipping", "How long does shipping take?"))

    async def failure() -> dict | None:
        """The conversation once the failure is recorded and the agent's note written (two writes, in that order)."""
        for cid in await email_conversations(client):
            view = await api(client, "GET", f"/api/agent/conversations/{cid}", li)
            noted = any(e["event"] == "agent_note" and "not delivered" in e["text"] for e in view["events"])
            if (view["details"]["email"] or {}).get("failed") and noted:
                return view
        return None

    view = await until(failure)
    [failed] = view["details"]["email"]["failed"]
    assert failed["attempts"] == 3 and "451" in failed["error"] and "gil@example.com" in failed["to"]
    kept = [v for _, v in await client.app[STORES].kv.scan("email:outbox:") if v["state"] != "sent"]
    assert [(k["state"], k["to"]) for k in kept] == [("failed", "Gil <gil@example.com>")]  # kept


async def test_a_mail_for_a_person_out_of_hours_becomes_a_ticket_and_is_acknowledged_with_the_time_we_are_back(
        email_app, dovecot, smtp_catcher):
    today = datetime.now(UTC).date()
    client = await email_app(handoff={"timezone": "UTC", "closed_dates": [today]})
    await dovecot.append(shopper_mail("Hal <hal@example.com>", "Wrong item",
                                      "I want to talk to a person, I got the wrong item."))
    [ack] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("hal@example.com"))
    text = ack.text()
    assert "we are back tomorrow at 00:00 (UTC)" in text and "(ticket T" in text
    assert ack["Auto-Submitted"] == "auto-replied"
    [events] = (await email_conversations(client)).values()
    [ticket] = [e for e in events if e["event"] == "ticket_created"]
    assert ticket["text"] == "I want to talk to a person, I got the wrong item." and ticket["ticket_id"] in text

    # next morning an agent answers the ticket in the console: the answer reaches the shopper by mail, threaded
    li = await agent_login(client, "amy", "Amy")
    await api(client, "PATCH", f"/api/agent/tickets/{ticket['ticket_id']}", li,
              {"reply": "Sorry about that! A courier will swap the item tomorrow.", "status": "resolved"})
    answer = (await smtp_catcher.wait_for(lambda: smtp_catcher.to("hal@example.com")[1:]))[0]
    assert answer.text().startswith("Sorry about that! A courier will swap the item tomorrow.")
    assert answer["In-Reply-To"] == users(events)[0]["message_id"] and not answer["Auto-Submitted"]


async def test_mail_forwarded_to_kefus_smtp_listener_is_answered_like_mail_from_the_mailbox(
        email_app, dovecot, smtp_catcher):
    port = free_port()
    await email_app(EMAIL_LISTEN_PORT=str(port))
    question = shopper_mail("Ivy <ivy@example.com>", "Shipping", "How long does shipping take?")
    await aiosmtplib.send(question, hostname="127.0.0.1", port=port, timeout=30)  # what a forwarding rule does
    [answer] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("ivy@example.com"))
    assert answer["In-Reply-To"] == question["Message-ID"] and "shipping" in answer.text().lower()


@pytest.fixture
def logs():
    capture = LogCapture()
    logger = logging.getLogger("bot.channels.email")
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(logging.NOTSET)


async def test_a_wrong_imap_password_is_logged_without_the_password_and_tried_again(email_app, dovecot, logs):
    client = await email_app(EMAIL_IMAP_PASSWORD="wrong-password-do-not-log")
    await until(lambda: _logged(logs, "unavailable"))
    assert "LoginRefused: login as service@shop.test refused" in logs.text
    assert "wrong-password-do-not-log" not in logs.text
    assert client.app  # the app serves meanwhile; the reader keeps trying


async def _logged(capture: LogCapture, words: str) -> bool:
    return words in capture.text


async def test_a_ticket_left_in_chat_with_an_address_is_answered_by_mail_and_the_reply_comes_back(
        email_app, dovecot, smtp_catcher):
    today = datetime.now(UTC).date()
    client = await email_app(handoff={"timezone": "UTC", "closed_dates": [today]})
    for said in ("I want to talk to a person",
                 "leave a message: my parcel is late, please mail me at amy@example.com"):
        resp = await client.post("/webhooks/rest/webhook", json={"sender": "chat-amy", "message": said})
        assert resp.status == 200, await resp.text()
    [ticket] = [e for e in await client.app[STORES].trackers.events("chat-amy") if e["event"] == "ticket_created"]
    li = await agent_login(client, "amy-agent", "Li")
    await api(client, "PATCH", f"/api/agent/tickets/{ticket['ticket_id']}", li,
              {"reply": "Your parcel left our warehouse this morning."})
    [answer] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("amy@example.com"))
    assert answer["Subject"].startswith(f"Re: Your message (ticket {ticket['ticket_id']})")
    text = answer.text()
    assert text.startswith("Your parcel left our warehouse this morning.") and "\n-- \nLi\n" in text
    assert "> my parcel is late, please mail me at amy@example.com" in text  # what she left, quoted

    await dovecot.append(shopper_mail("Amy <amy@example.com>", f"Re: {answer['Subject']}", "Great, thanks!",
                                      in_reply_to=answer["Message-ID"], references=answer["Message-ID"]))

    async def replied() -> list[str]:
        return [u["text"] for events in (await email_conversations(client)).values() for u in users(events)]

    assert await until(replied) == ["Great, thanks!"]  # her answer reaches the console as a mail thread


@pytest.mark.redis
async def test_two_workers_reading_one_mailbox_on_redis_answer_each_mail_once(email_app, dovecot, smtp_catcher):
    first = await email_app(name="a", redis=True)
    await email_app(name="b", redis=True)  # a second worker on the same Redis, reading the same mailbox
    senders = [f"pair{i}@example.com" for i in range(6)]
    await dovecot.append(*(shopper_mail(f"Pair {i} <{s}>", "运费", "运费多少钱？") for i, s in enumerate(senders)))

    async def everyone_answered() -> bool:
        return all(smtp_catcher.to(s) for s in senders)

    await until(everyone_answered, timeout_s=60)
    await until(lambda: _none_unseen(dovecot))
    await asyncio.sleep(1.5)  # time for a second answer, if there were one
    assert sorted(len(smtp_catcher.to(s)) for s in senders) == [1] * 6
    conversations = await email_conversations(first)
    assert len(conversations) == 6 and all(len(users(events)) == 1 for events in conversations.values())
    assert all("运费" in smtp_catcher.to(s)[0].text() for s in senders)


async def test_an_unsure_bot_hands_the_mail_to_a_person_with_its_reason_and_guesses_instead_of_asking_back(
        email_app, dovecot, smtp_catcher):
    client = await email_app()
    li = await agent_login(client, "amy", "Amy")
    await dovecot.append(shopper_mail("Jo <jo@example.com>", "Order", "I'd like to change it, is that possible?"),
                         shopper_mail("Kim <kim@example.com>", "Hi", "I have a question about my stuff"))
    queue = await until(lambda: _queue_of(client, li, 2))
    for item in queue:
        view = await api(client, "GET", f"/api/agent/conversations/{item['conversation_id']}", li)
        assert view["reason"] != "explicit_request" and view["channel"] == "email"
        assert not [e for e in view["events"] if e["event"] == "bot" and "Did you mean" in (e.get("text") or "")]
        if view["details"]["email"]["address"] == "jo@example.com":
            assert "change_order" in [c["id"] for c in view["candidates"]]  # where the bot stopped
    await asyncio.sleep(0.5)
    assert smtp_catcher.caught == []  # no "did you mean …?" by mail: a person answers


async def _queue_of(client, headers: dict[str, str], size: int) -> list[dict]:
    queue = await api(client, "GET", "/api/agent/queue", headers)
    return queue if len(queue) == size else []


async def test_a_stopping_worker_logs_out_of_the_mailbox_at_once_even_while_idling(email_app, dovecot):
    from bot.channels.email import EMAIL

    client = await email_app()
    reader = client.app[EMAIL].reader
    await until(lambda: _true(reader.connected.is_set() and reader.rounds > 0))
    await asyncio.sleep(0.3)  # in IDLE now: the server reads no LOGOUT until the reader says DONE
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 1.5  # a shutdown nobody waits on (it waited out a 2 s timeout before)
    sessions = [line for line in (dovecot.workdir / "dovecot.log").read_text(errors="replace").splitlines()
                if f"imap({USER})" in line]
    assert sessions and all("Logged out" in line and "IDLE" not in line for line in sessions), sessions


async def _true(value: bool) -> bool:
    return value
