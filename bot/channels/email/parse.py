"""One raw mail → what kefu needs of it (`ParsedMail`), whatever state the mail is in.

Parsed with the standard `email` package (`policy.default`). Mail in the wild is often broken: an unknown or
wrong charset, a MIME tree without its closing boundary, headers that do not parse. None of that may stop the
reader: every step falls back (bytes decoded with replacement characters, the raw text when no part can be
read) and the problems are kept in `defects`, so the agent sees the mail and what was wrong with it.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from bot.channels.email.html import html_to_text

log = logging.getLogger(__name__)

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Attachment:
    name: str
    mime: str
    data: bytes


@dataclass
class ParsedMail:
    message_id: str  # "<…>"; made from the bytes when the mail has none
    sender: str  # the address, lower case ("" when there is none we can read)
    sender_name: str
    subject: str
    text: str  # the whole body as text (quoted history and signature included)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    date: str = ""
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name → value, for the automatic check
    content_type: str = "text/plain"

    @property
    def thread_ids(self) -> list[str]:
        """The ids this mail answers, nearest first (In-Reply-To, then References from the end)."""
        seen: list[str] = []
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            if mid not in seen:
                seen.append(mid)
        return seen


def parse(raw: bytes) -> ParsedMail:
    """Never raises: a mail nothing can be read from still gives its raw text and a defect."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # the parser is lenient; this is the last resort
        log.warning("mail could not be parsed at all: %s", type(exc).__name__)
        text = raw.decode("utf-8", errors="replace")
        return ParsedMail(_made_id(raw), "", "", "", text, defects=[f"unparseable: {type(exc).__name__}"])
    defects = [type(d).__name__ for d in msg.defects]
    headers = {}
    for name in msg:
        headers[name.lower()] = _header(msg, name, defects)
    name, address = _address(headers.get("from", ""))
    mail = ParsedMail(
        message_id=next(iter(_ids(headers.get("message-id", ""))), None) or _made_id(raw),
        sender=address, sender_name=name, subject=headers.get("subject", "").strip(), text="",
        in_reply_to=_ids(headers.get("in-reply-to", "")), references=_ids(headers.get("references", "")),
        to=[a.lower() for _, a in getaddresses([headers.get("to", ""), headers.get("cc", ""),
                                                headers.get("delivered-to", "")]) if a],
        date=headers.get("date", ""), defects=defects, headers=headers,
        content_type=_safe(lambda: msg.get_content_type(), "text/plain"))
    text, mail.html_only = _body(msg, raw, mail.defects)
    mail.text = text.replace("\r\n", "\n").replace("\r", "\n")
    mail.attachments = _attachments(msg, mail.defects)
    return mail


def _header(msg: Message, name: str, defects: list[str]) -> str:
    try:
        return str(msg.get(name, "") or "")
    except Exception as exc:  # a header the policy cannot parse: its raw value
        defects.append(f"header {name}: {type(exc).__name__}")
        raw = msg.get_all(name, failobj=[""])
        return str(raw[0]) if raw else ""


def _address(value: str) -> tuple[str, str]:
    name, address = parseaddr(value)
    return name.strip(), address.strip().lower() if "@" in address else ""


def _ids(value: str) -> list[str]:
    return _MSGID.findall(value or "")


def _made_id(raw: bytes) -> str:
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id>"


def _safe(get, default):
    try:
        return get()
    except Exception:
        return default


def _decoded(part: Message, defects: list[str]) -> str:
    """A text part's content; a charset Python does not know, or bytes that are not in it, are replaced."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str) and "\ufffd" not in content:
            return content
        defects.append("charset: bytes not in the declared charset")
    except Exception as exc:
        defects.append(f"charset: {type(exc).__name__}")
    payload = _safe(lambda: part.get_payload(decode=True), None)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload() or "").encode("utf-8", errors="replace")
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8", "gb18030", "big5"):  # mislabelled Chinese mail is GBK / Big5 mostly
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", errors="replace")


def _body(msg: EmailMessage, raw: bytes, defects: list[str]) -> tuple[str, bool]:
    """(text, whether it came from HTML only): the plain part, else the HTML part as text, else the raw mail."""
    plain = html = None
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = None if plain is not None else msg.get_body(preferencelist=("html",))
    except Exception as exc:
        defects.append(f"mime: {type(exc).__name__}")
    if plain is None and html is None:  # a broken tree: the first text part anywhere
        for part in _safe(lambda: list(msg.walk()), [msg]):
            if part.get_content_maintype() == "text" and not part.is_multipart():
                plain, html = (part, None) if part.get_content_subtype() != "html" else (None, part)
                break
    if plain is not None:
        return _decoded(plain, defects).strip(), False
    if html is not None:
        return html_to_text(_decoded(html, defects)).strip(), True
    if not msg.is_multipart():
        return _decoded(msg, defects).strip(), False
    defects.append("no text part")
    body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
    return body.decode("utf-8", errors="replace").strip(), False


def _attachments(msg: EmailMessage, defects: list[str]) -> list[Attachment]:
    found = []
    try:
        parts = list(msg.iter_attachments()) if msg.is_multipart() else []
    except Exception as exc:
        defects.append(f"attachments: {type(exc).__name__}")
        return []
    for part in parts:
        if part.get_content_maintype() == "multipart":
            continue
        data = _safe(lambda part=part: part.get_payload(decode=True), None)
        if not isinstance(data, bytes):
            continue
        name = _safe(lambda part=part: part.get_filename(), None) or "attachment"
        found.append(Attachment(str(name), part.get_content_type(), data))
    return found
