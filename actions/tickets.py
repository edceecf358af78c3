"""Tickets: "any update on my ticket?" (ticket-status form + `action_ticket_status`) and the review tickets the bot
opens when a return is not possible (`action_create_ticket`).

A ticket is shown to the conversation that opened it, to its customer (signed in, or proven by phone / e-mail in
this conversation), or after the shopper gives the phone number or e-mail on the ticket — never to anyone else.
Ticket numbers look like T-20241125-0001 (the demo's) or T1001 (the handoff side's store); both are accepted.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import store
from actions.identity import FAILED, MAX_ATTEMPTS, SIGNED_IN, known_customer, shopper_language
from actions.orders import check_contact, too_many_attempts_message
from actions.texts import bi, say

logger = logging.getLogger(__name__)

_DATED = re.compile(r"(?<![A-Z0-9])T[\s-]*(\d{8})[\s-]*(\d{4})(?!\d)")
_SHORT = re.compile(r"(?<![A-Z0-9])T(\d{4,6})(?![\d-])")
STATUS = {
    "pending": {"en": "waiting for a colleague", "zh": "待处理"},
    "in_progress": {"en": "being worked on", "zh": "处理中"},
    "resolved": {"en": "resolved", "zh": "已解决"},
}
RESET = [SlotSet("ticket_id", None), SlotSet("verify_contact", None)]


def normalize_ticket_id(text: Any) -> str | None:
    """"T-20241120-0001" (also typed t20241120 0001…) or "T1001", else None."""
    if not isinstance(text, str):
        return None
    clean = unicodedata.normalize("NFKC", text).upper()
    match = _DATED.search(clean)
    if match:
        return f"T-{match.group(1)}-{match.group(2)}"
    match = _SHORT.search(clean)
    return f"T{match.group(1)}" if match else None


def ticket_visible(tracker: Tracker, ticket: dict[str, Any]) -> bool:
    if ticket.get("conversation_id") and ticket.get("conversation_id") == tracker.sender_id:
        return True
    owner = ticket.get("customer_id")
    return bool(owner) and known_customer(tracker) == owner


def _find(ticket_id: str) -> dict[str, Any] | None:
    return store.tickets().get(ticket_id)


def not_found_message(ticket_id: str, language: str) -> str:
    return bi(language, zh=f"没有找到工单 {ticket_id}，请核对一下工单号再发给我，或者说“转人工”。",
              en=f"I couldn't find ticket {ticket_id}. Please check the number and send it again, or ask for a "
              "person.")


def describe_ticket(ticket: dict[str, Any], language: str) -> str:
    status = say(STATUS.get(str(ticket.get("status")), {"en": ticket.get("status"), "zh": ticket.get("status")}),
                 language)
    subject = say(ticket.get("subject"), language)
    updates = ticket.get("updates") or []
    last = updates[-1] if updates else None
    if language == "zh":
        text = (f"工单 {ticket['id']}（{subject}）：{status}，{ticket.get('created_at')} 创建，"
                f"最近更新 {ticket.get('updated_at')}。")
        if last:
            text += f"最新进展：{say(last.get('text'), 'zh')}"
        elif ticket.get("status") == "pending":
            text += "同事会在 24 小时内回复您（人工客服每天 9:00–21:00）。"
        return text
    text = (f"Ticket {ticket['id']} ({subject}) is {status} — opened {ticket.get('created_at')}, last updated "
            f"{ticket.get('updated_at')}.")
    if last:
        text += f" Latest: {say(last.get('text'), 'en')}"
    elif ticket.get("status") == "pending":
        text += " A colleague will reply within 24 hours (people are here 9:00–21:00 China time, every day)."
    return text


class ValidateTicketStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_ticket_status_form"

    def validate_ticket_id(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                           domain: DomainDict) -> dict[str, Any]:
        language = shopper_language(tracker)
        ticket_id = normalize_ticket_id(slot_value)
        if ticket_id is None:
            dispatcher.utter_message(response="utter_invalid_ticket_id")
            return {"ticket_id": None}
        try:
            ticket = _find(ticket_id)
        except store.StoreError as exc:
            logger.error("ticket lookup unavailable: %s", exc)
            return {"ticket_id": ticket_id, "verify_contact": FAILED}
        if ticket is None:
            dispatcher.utter_message(text=not_found_message(ticket_id, language))
            return {"ticket_id": None}
        if ticket_visible(tracker, ticket):
            return {"ticket_id": ticket["id"], "verify_contact": SIGNED_IN}
        if (tracker.get_slot("verify_attempts") or 0) >= MAX_ATTEMPTS:
            dispatcher.utter_message(text=too_many_attempts_message(language))
            return {"ticket_id": ticket["id"], "verify_contact": FAILED}
        return {"ticket_id": ticket["id"], "verify_contact": None}

    def validate_verify_contact(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        try:
            ticket = _find(str(tracker.get_slot("ticket_id") or ""))
            customers = store.load_customers()
        except store.StoreError as exc:
            logger.error("ticket lookup unavailable: %s", exc)
            return {"verify_contact": FAILED}
        if ticket is None:
            return {"verify_contact": None}
        customer = customers.get(str(ticket.get("customer_id")))
        contact = ticket.get("contact")
        owner_contact = ({"email": contact} if "@" in str(contact) else {"phone": contact}) if contact else None
        # a guest's ticket has no customer to remember: the slot verified_ticket (set only here) says it passed
        return check_contact(slot_value, dispatcher, tracker, [customer, owner_contact], customer,
                             lambda: {"verified_ticket": ticket["id"]})


class ActionTicketStatus(Action):
    def name(self) -> str:
        return "action_ticket_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        ticket_id = normalize_ticket_id(tracker.get_slot("ticket_id"))
        events: list[EventType] = [*RESET, SlotSet("return_outcome", None)]
        if ticket_id is None:
            dispatcher.utter_message(response="utter_ask_ticket_id")
            return events
        try:
            ticket = _find(ticket_id)
        except store.StoreError as exc:
            logger.error("ticket lookup unavailable: %s", exc)
            dispatcher.utter_message(text=bi(language, zh="抱歉，工单查询暂时无法使用，请稍后再试，或者说“转人工”。",
                                             en="Sorry, I can't look up tickets right now. Please try again soon, "
                                             "or ask for a person."))
            return events
        if ticket is None:
            dispatcher.utter_message(text=not_found_message(ticket_id, language))
        elif ticket_visible(tracker, ticket) or tracker.get_slot("verified_ticket") == ticket["id"]:
            dispatcher.utter_message(text=describe_ticket(ticket, language))
        else:
            dispatcher.utter_message(text=bi(
                language,
                zh=f"抱歉，我无法确认工单 {ticket_id} 是您的，所以不能显示它的内容。如果是您的工单，请说“转人工”。",
                en=f"Sorry, I couldn't confirm that ticket {ticket_id} is yours, so I can't show it. If it is, "
                'say "talk to a human" and a colleague will help.'))
        return events


class ActionCreateTicket(Action):
    """Opens a ticket for the returns team to review a return the rules refused (ticket_context says which)."""

    def name(self) -> str:
        return "action_create_ticket"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        context = tracker.get_slot("ticket_context") or "Review requested by the shopper"
        events: list[EventType] = [SlotSet("return_outcome", None), SlotSet("ticket_context", None)]
        try:
            ticket = store.tickets().create(
                customer_id=known_customer(tracker), conversation_id=tracker.sender_id, contact=None,
                subject={"en": "Return review", "zh": "退货复核"}, details=context, language=language)
        except (store.StoreError, OSError) as exc:
            logger.error("cannot open a ticket: %s", exc)
            dispatcher.utter_message(text=bi(language, zh="抱歉，工单暂时开不了。您可以说“转人工”，直接请客服处理。",
                                             en="Sorry, I can't open a ticket right now — say \"talk to a human\" "
                                             "and a colleague will take it from here."))
            return events
        dispatcher.utter_message(text=bi(
            language,
            zh=f"好的，已为您创建工单 {ticket['id']}，退货团队会在 24 小时内复核并回复您。"
            "随时发工单号给我就能查询进度。",
            en=f"Done — ticket {ticket['id']} is open, and our returns team will review it and reply within 24 "
            "hours. Send me the ticket number any time to check on it."))
        return events
