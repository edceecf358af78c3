"""The e-mail channel's pieces a shopper or a shop owner notices without a mailbox: settings checked at start in
one line without secrets, what the bot and agent read of a mail (no quoted history, no signature, HTML as text),
which mail is automatic, and how a thread is recognised from its subject when a client drops the headers."""

from __future__ import annotations

import pytest

from bot.channels.email import EmailChannel
from bot.channels.email.automatic import automatic_reason
from bot.channels.email.html import html_to_text
from bot.channels.email.parse import parse
from bot.channels.email.quoting import new_text
from bot.channels.email.threads import clean_subject, subject_token
from bot.channels.registry import owner_of
from bot.channels.settings import ConfigError, load_settings

SECRET = "imap-secret-do-not-show"
FULL = {"EMAIL_ADDRESS": "service@shop.test", "EMAIL_IMAP_HOST": "imap.shop.test", "EMAIL_IMAP_PASSWORD": SECRET,
        "EMAIL_SMTP_HOST": "smtp.shop.test"}


def test_settings_come_from_the_environment_and_problems_are_one_line_without_secrets():
    assert load_settings(EmailChannel, None, {}) is None  # not configured: not mounted
    settings = load_settings(EmailChannel, None, {**FULL, "EMAIL_IMAP_PORT": "1993"})
    assert settings.imap_user == "service@shop.test" and settings.imap_port == 1993 and settings.smtp_port == 465
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())

    with pytest.raises(ConfigError) as partly:
        load_settings(EmailChannel, None, {k: v for k, v in FULL.items() if k != "EMAIL_IMAP_PASSWORD"})
    assert "EMAIL_IMAP_PASSWORD" in str(partly.value) and "\n" not in str(partly.value)
    with pytest.raises(ConfigError) as invalid:
        load_settings(EmailChannel, None, {**FULL, "EMAIL_ADDRESS": "not-an-address", "EMAIL_IMAP_PORT": "99999",
                                           "EMAIL_SMTP_TLS": "maybe"})
    message = str(invalid.value)
    assert "EMAIL_ADDRESS: is not an e-mail address" in message and "EMAIL_IMAP_PORT" in message
    assert "EMAIL_SMTP_TLS" in message and SECRET not in message and "not-an-address" not in message
    assert "\n" not in message
    assert owner_of("email:0123456789ab") == "email"  # REST may not write into a mail thread


@pytest.mark.parametrize(("text", "new"), [
    ("Thanks, still waiting.\n\nOn Mon, 1 Dec 2026 at 10:00, Shop <s@shop.test> wrote:\n> old\n> text",
     "Thanks, still waiting."),
    ("好的，谢谢\n\n在 2026年12月1日 10:00，客服 <s@shop.test> 写道：\n> 旧的内容", "好的，谢谢"),
    ("Where is my order?\n-- \nBob Smith\nACME Ltd", "Where is my order?"),
    ("多久发货？\n\n发自我的iPhone", "多久发货？"),
    ("new\n\n------------------ 原始邮件 ------------------\n发件人: 客服\n发送时间: 周一\n\nold", "new"),
    ("new\n\nFrom: Shop <s@shop.test>\nSent: Monday\nTo: Bob\nSubject: hi\n\nold", "new"),
    ("Hi,\n\nwhen do you ship?\n\nThanks,\nBob", "Hi,\n\nwhen do you ship?"),
    ("你好，请问多久发货？\n\n张三", "你好，请问多久发货？"),
    ("Question one.\n\nIs shipping free?", "Question one.\n\nIs shipping free?"),
    ("> only a quote", "> only a quote"),  # nothing new: the whole text rather than nothing
])
def test_the_bot_and_the_agent_read_only_what_the_shopper_wrote_now(text: str, new: str):
    assert new_text(text) == new


def test_html_only_mail_becomes_text_without_scripts_and_with_its_links():
    markup = ("<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
              "<p>Hello,</p><p>my order <b>123</b> has not arrived.<br>Tracking: "
              "<a href='https://track.example/123'>here</a></p><blockquote>old mail</blockquote>"
              "<img src='https://evil.example/pixel.gif'></body></html>")
    assert html_to_text(markup) == ("Hello,\n\nmy order 123 has not arrived.\nTracking: here "
                                    "(https://track.example/123)\n\n> old mail")
    mail = parse(b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + markup.encode())
    assert mail.html_only and mail.text.startswith("Hello,") and "alert" not in mail.text


def _mail(headers: str, body: str = "How long does shipping take?") -> bytes:
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


@pytest.mark.parametrize(("headers", "reason"), [
    ("From: Bob <bob@example.com>\nSubject: Shipping", None),
    ("From: Bob <bob@example.com>\nSubject: Shipping\nAuto-Submitted: no", None),
    ("From: Bob <bob@example.com>\nSubject: Shipping\nAuto-Submitted: auto-replied", "auto_submitted"),
    ("From: News <news@example.com>\nSubject: Shipping\nPrecedence: list", "precedence"),
    ("From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail", "mailer_daemon"),
    ("From: no-reply@example.com\nSubject: Your receipt", "mailer_daemon"),
    ("From: Ann <ann@example.com>\nSubject: Automatic reply: Shipping", "out_of_office"),
    ("From: 王 <wang@example.cn>\nSubject: =?utf-8?b?6Ieq5Yqo5Zue5aSN77ya5Y+R6LSn?=", "out_of_office"),
    ("From: Service <SERVICE@shop.test>\nSubject: Re: Shipping", "own_address"),
    ("From: Bob <bob@example.com>\nSubject: Re\nMessage-ID: <kefu.0123456789ab.ff@shop.test>", "own_message"),
    ("From: Bob <bob@example.com>\nContent-Type: multipart/report; report-type=delivery-status; boundary=x",
     "delivery_report"),
])
def test_automatic_mail_is_recognised(headers: str, reason: str | None):
    assert automatic_reason(parse(_mail(headers)), {"service@shop.test"}, "<kefu.") == reason


def test_a_thread_is_found_by_its_subject_token_when_a_client_drops_the_headers():
    assert subject_token("Re: 回复: 关于发货 [#0123456789ab]") == "0123456789ab"
    assert clean_subject("Re: 回复: AW: 关于发货 [#0123456789ab]") == "关于发货"
    assert subject_token("Order #12345") is None


def test_a_mail_nothing_can_be_read_from_is_still_kept_with_its_defects():
    mail = parse(b"\xff\xfe\x00garbage without headers\r\n\r\n\x80\x81")
    assert mail.message_id.startswith("<sha256.") and mail.text  # an id to deduplicate by, and something to show
    unknown = parse(_mail("From: a@example.com\nContent-Type: text/plain; charset=x-klingon",
                          "plain ascii words"))
    assert unknown.text == "plain ascii words"
