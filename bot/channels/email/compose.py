"""The mails kefu sends: a proper reply in the thread (From the shop, To the shopper, "Re:" subject with the
thread's token, In-Reply-To and References, the shop's signature, the original quoted below, plain text and an
HTML alternative). Bot answers and acknowledgements are marked `Auto-Submitted: auto-replied` (RFC 3834), so
other robots do not answer them; an agent's reply is a person's mail and is not.
"""

from __future__ import annotations

import html
import secrets
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from bot.channels.email.config import EmailSettings
from bot.channels.email.threads import clean_subject, token_of

REACH_A_PERSON = {
    "zh": "需要人工客服？直接回复本邮件并写上“转人工”，我们的客服会亲自回复您。",
    "en": "Need a person? Reply to this mail with “talk to a person” and one of our team will answer you.",
}
ACK_OUT_OF_HOURS = {
    "zh": "您好，我们已收到您的邮件{ticket}。客服团队现在下班了，将于{when}上班后尽快回复您。",
    "en": "Thank you for your mail{ticket}. Our team is away right now; we are back {when} and will answer you "
          "then.",
}
TICKET = {"zh": "（工单号 {ticket_id}）", "en": " (ticket {ticket_id})"}
TOO_LARGE = {
    "zh": "您好，您的邮件中有文件没能收下：\n{files}\n单个附件最大 {limit}，整封邮件最大 {mail_limit}；"
          "支持图片（PNG、JPEG、GIF、WebP）和 PDF。请压缩后重新发送，或发送下载链接。其他内容我们已经收到。",
    "en": "Thank you for your mail. We could not accept some of what it carried:\n{files}\nEach attachment may be up "
          "to {limit} and a whole mail up to {mail_limit}; we accept images (PNG, JPEG, GIF, WebP) and PDF. Please "
          "send a smaller file or a download link. Everything else in your mail reached us.",
}
WROTE = {"zh": "在 {date}，{name} 写道：", "en": "On {date}, {name} wrote:"}


def ticket_subject(ticket_id: str, language: str) -> str:
    return f"您的留言（工单 {ticket_id}）" if language == "zh" else f"Your message (ticket {ticket_id})"


def new_message_id(conversation_id: str, settings: EmailSettings) -> str:
    return f"<kefu.{token_of(conversation_id)}.{secrets.token_hex(8)}@{settings.domain}>"


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def reply(settings: EmailSettings, conversation_id: str, thread: dict[str, Any], body: str, language: str,
          automatic: bool, signed_by: str | None = None) -> EmailMessage:
    """A reply in the thread with `body`, the signature and the shopper's last mail quoted below."""
    msg = EmailMessage()
    msg["From"] = formataddr((settings.display_name, settings.address))
    msg["To"] = formataddr((thread.get("name") or "", thread["address"]))
    subject = clean_subject(thread.get("subject") or "") or ("您的咨询" if language == "zh" else "Your question")
    token = f" [#{token_of(conversation_id)}]" if settings.subject_token else ""
    msg["Subject"] = f"{'回复' if language == 'zh' else 'Re'}: {subject}{token}"
    msg["Message-ID"] = new_message_id(conversation_id, settings)
    msg["Date"] = formatdate(localtime=True)
    last = thread.get("last") or {}
    if last.get("message_id"):
        msg["In-Reply-To"] = last["message_id"]
    references = thread.get("references") or []
    if references:
        msg["References"] = " ".join(references)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    signature = "\n".join(line for line in (signed_by, settings.shop_signature) if line)
    name = last.get("name") or thread["address"]
    quote_head = WROTE["zh" if language == "zh" else "en"].format(date=last["date"], name=name) if last.get("date") \
        else (f"{name} 写道：" if language == "zh" else f"{name} wrote:")
    quoted = "\n".join("> " + line for line in (last.get("text") or "").splitlines())
    plain = f"{body.strip()}\n\n-- \n{signature}\n"
    if quoted:
        plain += f"\n{quote_head}\n{quoted}\n"
    msg.set_content(plain)
    html_body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.strip().split("\n\n"))
    html_sig = html.escape(signature).replace("\n", "<br>")
    html_quote = (f"<p>{html.escape(quote_head)}</p><blockquote style=\"margin:0 0 0 .8ex;border-left:1px solid "
                  f"#ccc;padding-left:1ex\">{html.escape(last.get('text') or '').replace(chr(10), '<br>')}"
                  "</blockquote>") if quoted else ""
    msg.add_alternative(f"<!DOCTYPE html><html><body>{html_body}<p>-- <br>{html_sig}</p>{html_quote}</body></html>",
                        subtype="html")
    return msg


def bot_answer(texts: list[str], language: str) -> str:
    """The bot's answers to each question of the mail, then how to reach a person."""
    answers = "\n\n".join(t.strip() for t in texts if t and t.strip())
    return f"{answers}\n\n{REACH_A_PERSON['zh' if language == 'zh' else 'en']}"


def out_of_hours(when: str, ticket_id: str | None, language: str) -> str:
    key = "zh" if language == "zh" else "en"
    ticket = TICKET[key].format(ticket_id=ticket_id) if ticket_id else ""
    return ACK_OUT_OF_HOURS[key].format(when=when, ticket=ticket)


def refused_files(files: list[str], settings: EmailSettings, language: str) -> str:
    key = "zh" if language == "zh" else "en"
    return TOO_LARGE[key].format(files="\n".join(f"- {f}" for f in files),
                                 limit=megabytes(settings.max_attachment_bytes),
                                 mail_limit=megabytes(settings.max_mail_bytes))
