"""Who the shopper is, in which language to answer, and the phone-or-e-mail check before showing an order.

Identity, strongest first:
1. `customer_id` in the metadata of the shopper's latest message — sent by the shop's backend, which knows who is
   signed in, with its HMAC (`identifier_hash`). kefu's `Agent.handle` keeps it only when that proof is valid
   (bot/identity.py), so what reaches the actions here is proven.
2. the `customer_id` slot — set by an action (never by the shopper's words) once they gave the phone number or
   e-mail of one of that customer's orders or tickets in this conversation.
Anyone else gets nothing about an order or a ticket until they pass the check: `verify_contact` is asked by the
forms, compared with the customer's phone and e-mail, and after MAX_ATTEMPTS wrong answers the bot stops asking.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa_sdk import Tracker

MAX_ATTEMPTS = 3
SIGNED_IN = "account"  # verify_contact when the conversation's customer owns the order: nothing to ask
FAILED = "failed"  # verify_contact after MAX_ATTEMPTS wrong answers: the form ends, the action declines
NOT_NEEDED = "n/a"  # a form slot that does not apply (e.g. the item's condition for a faulty item)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\d[\d\s()-]{5,20}\d(?![A-Za-z0-9])")


def shopper_language(tracker: Tracker) -> str:
    """zh or en: the `language` slot, else a guess from the latest message (Chinese characters → zh)."""
    language = tracker.get_slot("language")
    if language in ("zh", "en"):
        return language
    text = (tracker.latest_message or {}).get("text") or ""
    return "zh" if _CJK.search(text) else "en"


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata of the shopper's latest message (Rasa puts it in latest_message; the user event has it too)."""
    metadata = (tracker.latest_message or {}).get("metadata")
    if isinstance(metadata, dict) and metadata:
        return metadata
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            found = event.get("metadata")
            return found if isinstance(found, dict) else {}
    return {}


def signed_in_customer(tracker: Tracker) -> str | None:
    value = message_metadata(tracker).get("customer_id")
    return str(value) if value not in (None, "") else None


def known_customer(tracker: Tracker) -> str | None:
    """The customer this conversation is known to be: the channel's word, else one proven by phone / e-mail."""
    return signed_in_customer(tracker) or tracker.get_slot("customer_id") or None


def normalize_phone(text: str) -> str | None:
    """Digits of a phone number, without +86 / 0086 for a Chinese mobile; None if it is not one."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return digits if 7 <= len(digits) <= 15 else None


def parse_contact(text: Any) -> tuple[str, str] | None:
    """("email", address) or ("phone", digits) found in what the shopper typed, else None."""
    if not isinstance(text, str):
        return None
    clean = unicodedata.normalize("NFKC", text)
    email = _EMAIL.search(clean)
    if email:
        return "email", email.group(0).lower()
    phone = _PHONE.search(clean)
    if phone:
        digits = normalize_phone(phone.group(0))
        if digits:
            return "phone", digits
    return None


def contact_matches(contact: tuple[str, str], *owners: dict[str, Any] | None) -> bool:
    """Whether the contact is the phone or e-mail of any of `owners` (customer records, or a ticket's contact)."""
    kind, value = contact
    for owner in owners:
        if not owner:
            continue
        if kind == "email" and str(owner.get("email") or "").strip().lower() == value:
            return True
        if kind == "phone":
            known = normalize_phone(str(owner.get("phone") or ""))
            if known and known == value:
                return True
    return False


def mask(contact: tuple[str, str]) -> str:
    """What the bot may repeat back: 138****8001, w***@example.com."""
    kind, value = contact
    if kind == "email":
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"{value[:3]}****{value[-4:]}" if len(value) >= 8 else "****" + value[-2:]
