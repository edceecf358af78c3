"""One e-mail thread = one conversation `email:<token>`.

A mail joins the conversation of the first id it answers (In-Reply-To, then References from the newest) that kefu
knows: every id it saw or sent is kept (`email:msgid:<id>` → conversation), and the ids kefu writes carry the
token themselves (`<kefu.<token>.…@shop>`), so a reply to kefu's mail finds its thread even if the store forgot.
A client that drops those headers still keeps the subject: "[#<token>]" there is the fallback, and so is a
plus address (`service+<token>@shop`). A mail that answers nothing known starts a thread whose token comes from
its Message-ID, so reading the same mail again (a restart before it was marked read) finds the same
conversation.

The thread's document (`email:thread:<conversation>`) keeps what replies need: the shopper's address and
name, the subject, the References chain and the last mail the shopper sent (for In-Reply-To and the quote).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bot.channels.email.parse import ParsedMail
from bot.channels.push.documents import update_document
from bot.stores import Stores

PREFIX = "email:"
ID_MARKER = "kefu."  # our Message-IDs: <kefu.<token>.<random>@<shop domain>>
_OWN_ID = re.compile(r"^<kefu\.([0-9a-f]{12})\.[0-9a-f]+@")
_SUBJECT_TOKEN = re.compile(r"\[#([0-9a-f]{12})\]")
MAX_REFERENCES = 20


def token_of(conversation_id: str) -> str:
    return conversation_id.removeprefix(PREFIX)


def subject_token(subject: str) -> str | None:
    found = _SUBJECT_TOKEN.search(subject or "")
    return found.group(1) if found else None


def clean_subject(subject: str) -> str:
    """The subject without our token and without any number of "Re:" / "回复：" in front."""
    subject = _SUBJECT_TOKEN.sub("", subject or "").strip()
    while True:
        stripped = re.sub(r"^\s*(re|aw|fwd?|回复|答复|回覆)\s*[:：]\s*", "", subject, flags=re.I)
        if stripped == subject:
            return subject.strip()
        subject = stripped


class ThreadBook:
    def __init__(self, stores: Stores, own_address: str) -> None:
        self.stores = stores
        self.local, self.domain = own_address.split("@", 1)

    async def conversation_for(self, mail: ParsedMail) -> str:
        """The conversation this mail belongs to (an existing thread's, or the new one it starts)."""
        kv = self.stores.kv
        for message_id in mail.thread_ids:
            own = _OWN_ID.match(message_id)
            if own:
                return PREFIX + own.group(1)
            known = await kv.get(f"email:msgid:{message_id}")
            if known:
                return str(known["conversation"])
        token = subject_token(mail.subject) or self._plus_token(mail.to)
        if token and await kv.get(f"email:thread:{PREFIX}{token}") is not None:
            return PREFIX + token
        known = await kv.get(f"email:msgid:{mail.message_id}")  # the same mail read again
        if known:
            return str(known["conversation"])
        return PREFIX + hashlib.sha256(mail.message_id.encode()).hexdigest()[:12]

    def _plus_token(self, recipients: list[str]) -> str | None:
        for address in recipients:
            found = re.match(rf"^{re.escape(self.local)}\+([0-9a-f]{{12}})@{re.escape(self.domain)}$", address)
            if found:
                return found.group(1)
        return None

    async def remember(self, conversation_id: str, message_id: str) -> None:
        await self.stores.kv.set(f"email:msgid:{message_id}", {"conversation": conversation_id})

    async def shopper_wrote(self, conversation_id: str, mail: ParsedMail, text: str) -> dict[str, Any]:
        """Keep the mail's ids and what a reply to it needs; returns the thread's document."""
        await self.remember(conversation_id, mail.message_id)

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {"address": mail.sender, "name": mail.sender_name, "subject": clean_subject(mail.subject),
                          "references": []}
            references = [r for r in [*doc.get("references", []), *mail.references, mail.message_id]
                          if r != mail.message_id] + [mail.message_id]
            doc["references"] = list(dict.fromkeys(references))[-MAX_REFERENCES:]
            doc["address"] = mail.sender or doc.get("address")
            doc["name"] = mail.sender_name or doc.get("name")
            doc["subject"] = doc.get("subject") or clean_subject(mail.subject)
            doc["last"] = {"message_id": mail.message_id, "date": mail.date, "text": text[:20000],
                           "name": mail.sender_name or mail.sender}
            return doc

        return await update_document(self.stores.kv, f"email:thread:{conversation_id}", change) or {}

    async def we_sent(self, conversation_id: str, message_id: str) -> None:
        await self.remember(conversation_id, message_id)

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            doc["references"] = [*doc.get("references", []), message_id][-MAX_REFERENCES:]
            return doc

        await update_document(self.stores.kv, f"email:thread:{conversation_id}", change)

    async def get(self, conversation_id: str) -> dict[str, Any] | None:
        return await self.stores.kv.get(f"email:thread:{conversation_id}")
