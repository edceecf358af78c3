"""Order lookup: the order-status form's validation (number, then who is asking) and `action_order_status`.

The validation helpers here are shared with the return form (returns.py): both ask for an order number, then
for the phone number or e-mail on the order unless the conversation is already known to be that customer's.
Replies follow the shopper's language (the `language` slot the engine sets on every message).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import store
from actions.identity import (
    FAILED,
    MAX_ATTEMPTS,
    SIGNED_IN,
    contact_matches,
    known_customer,
    mask,
    parse_contact,
    shopper_language,
    signed_in_customer,
)
from actions.texts import bi, items_text, say

logger = logging.getLogger(__name__)

# Our order numbers: "KF" + 8 digits (also typed "kf 2024 0001", "KF-20240001").
_KF_NUMBER = re.compile(r"(?<![A-Z0-9])KF[\s\-]*(\d{4})[\s\-]?(\d{4})(?!\d)")
# Digits only: 8 digits is one of ours without "KF"; 9–12 digits is some other store's number (a marketplace's:
# shoppers send them, though we sell only on our own site and app), answered as not ours.
# Not inside a ticket number (T-20241120-0001) and not an 11-digit Chinese mobile number (1[3-9]…).
_DIGITS_NUMBER = re.compile(r"(?<![A-Z0-9-])(?!1[3-9]\d{9}(?!\d))(\d{8,12})(?![\d-])")

ORDER_SLOTS_RESET = [SlotSet("order_id", None), SlotSet("verify_contact", None), SlotSet("return_outcome", None)]


def normalize_order_id(text: Any) -> str | None:
    """The order number in `text` in canonical form ("KF20240001", or the bare digits), else None."""
    if not isinstance(text, str) or not text.strip():
        return None
    clean = unicodedata.normalize("NFKC", text).upper()  # full-width ＫＦ２０２４… → KF2024…
    match = _KF_NUMBER.search(clean)
    if match:
        return "KF" + match.group(1) + match.group(2)
    match = _DIGITS_NUMBER.search(clean)
    return match.group(1) if match else None


def gave_up_checking(tracker: Tracker) -> bool:
    """The form stopped asking for the phone / e-mail after too many wrong answers (and said so)."""
    return tracker.get_slot("verify_contact") == FAILED and (tracker.get_slot("verify_attempts") or 0) >= MAX_ATTEMPTS


def authorized(tracker: Tracker, record: dict[str, Any]) -> bool:
    """Whether this conversation may see an order or ticket: it is known to be the record's customer."""
    owner = record.get("customer_id")
    return bool(owner) and known_customer(tracker) == owner


# -- messages ---------------------------------------------------------------------------------------------------------


def not_found_message(order_id: str, language: str) -> str:
    if order_id.isdigit() and len(order_id) > 8:
        return bi(
            language,
            zh=f"{order_id} 不是我们的订单号：我们的订单号是 KF 加 8 位数字，在下单短信和“我的订单”里能看到。"
            "我们只在自己的网站和 App 销售，没有天猫、京东等平台店铺，平台上的订单请联系该店铺。",
            en=f"{order_id} isn't one of our order numbers: ours are KF followed by 8 digits, as in your order "
            'confirmation and "My orders". We sell only on our own site and app (no Tmall, JD or other marketplace '
            "store), so an order from a marketplace is for that store to look up.",
        )
    return bi(
        language,
        zh=f"抱歉，没有查到订单号为 {order_id} 的订单。请核对一下下单短信或“我的订单”里的订单号再发给我，"
        "也可以说“转人工”，让同事帮您查。",
        en=f"Sorry, I couldn't find an order with the number {order_id}. Please check it against your order "
        'confirmation or "My orders" and send it again — or say "talk to a human" and a colleague will look into it.',
    )


def lookup_unavailable_message(language: str) -> str:
    return bi(language, zh="抱歉，订单查询暂时无法使用，请稍后再试，或者说“转人工”联系人工客服。",
              en="Sorry, I can't look up orders right now. Please try again in a moment, or ask for a person.")


def not_on_account_message(order_id: str, language: str) -> str:
    return bi(
        language,
        zh=f"订单 {order_id} 不在您当前登录的账号下。如果是您用其他账号或游客身份下的单，请告诉我下单时留的手机号或"
           "邮箱。",
        en=f"Order {order_id} isn't on the account you're signed in with. If it's yours (placed as a guest or "
        "with another account), tell me the phone number or e-mail used on it.",
    )


def not_a_contact_message(language: str) -> str:
    return bi(language, zh="这好像不是手机号或邮箱。请发下单时留的手机号（例如 13800138000）或邮箱地址。",
              en="That doesn't look like a phone number or an e-mail address. Please send the phone number "
              "(e.g. 13800138000) or e-mail used on the order.")


def mismatch_message(language: str, left: int) -> str:
    return bi(language, zh=f"这和订单上的信息对不上，请再核对一下（还可以再试 {left} 次）。",
              en=f"That doesn't match the details on the order. Please check and try again ({left} more "
              f"{'try' if left == 1 else 'tries'}).")


def too_many_attempts_message(language: str) -> str:
    return bi(language, zh="为了您的账户安全，我不能再继续核对了。如果这是您的订单，请说“转人工”，客服会帮您处理。",
              en="For your security I can't keep checking. If this is your order, say \"talk to a human\" and a "
              "colleague will help you.")


def cannot_show_message(order_id: str, language: str) -> str:
    return bi(
        language,
        zh=f"抱歉，我无法确认订单 {order_id} 属于您，所以不能显示它的信息。如果是您的订单，请说“转人工”，客服核实后"
           "会帮您处理。",
        en=f"Sorry, I couldn't confirm that order {order_id} is yours, so I can't show its details. If it is, "
        'say "talk to a human" and a colleague will verify it and help you.',
    )


def _parcel_text(parcel: dict[str, Any], language: str) -> str:
    courier = say(parcel.get("courier"), language)
    if language == "zh":
        return (f"{items_text(parcel.get('items') or [], 'zh')}：{parcel.get('shipped_at')} 由{courier}发出，运单号 "
                f"{parcel.get('tracking_number')}")
    return (f"{items_text(parcel.get('items') or [], 'en')} left on {parcel.get('shipped_at')} with {courier}, "
            f"tracking number {parcel.get('tracking_number')}")


def describe_order(order: dict[str, Any], language: str) -> str:
    """One message with the order's status, courier, tracking number, dates and items, in `language`."""
    oid, status = order["id"], order.get("status")
    channel, destination = say(order.get("channel"), language), say(order.get("destination"), language)
    courier, tracking = say(order.get("courier"), language), order.get("tracking_number", "")
    items = items_text(order.get("items") or [], language)
    zh = language == "zh"
    name = (f"{channel}订单 {oid}" if channel else f"订单 {oid}") if zh else (
        f"Order {oid} from {channel}" if channel else f"Order {oid}")
    if status == "pending_payment":
        text = bi(language, zh=f"{name} 还没有付款。未付款的订单会保留 30 分钟，超时自动取消；请在“我的订单”里完成支"
                               "付。",
                  en=f"{name} hasn't been paid yet. Unpaid orders are kept for 30 minutes and then cancelled "
                  'automatically — you can pay for it under "My orders".')
    elif status == "processing":
        text = bi(language, zh=f"{name}（{order.get('ordered_at')} 下单）正在备货中，预计 "
                               f"{order.get('estimated_ship')} 发出，发货后会短"
                               "信通知您运单号。",
                  en=f"{name} (placed {order.get('ordered_at')}) is being packed and should ship by "
                  f"{order.get('estimated_ship')}. You'll get the tracking number by text as soon as it leaves "
                  "our warehouse.")
    elif status == "preorder":
        text = bi(language, zh=f"{name} 是预售订单，预计 {order.get('estimated_ship')} 发货，到货后马上为您发出；发"
                               "货前都可以取消。",
                  en=f"{name} is a pre-order: it's due to ship on {order.get('estimated_ship')}, and we'll send it "
                  "the moment it's in. You can cancel any time before it ships.")
    elif status == "partially_shipped":
        parcels = order.get("parcels") or []
        shipped = [p for p in parcels if p.get("tracking_number")]
        waiting = [p for p in parcels if not p.get("tracking_number")]
        sent = "；".join(_parcel_text(p, language) for p in shipped) if zh else "; ".join(
            _parcel_text(p, language) for p in shipped)
        rest = [f"{items_text(p.get('items') or [], language)}" for p in waiting]
        later = ", ".join(f"{r}" for r in rest)
        eta = waiting[0].get("estimated_ship") if waiting else ""
        text = bi(language, zh=f"{name} 分两个包裹发货。已发出：{sent}。还在备货：{later}，预计 {eta} 发出。",
                  en=f"{name} is shipping in two parcels. Sent: {sent}. Still being packed: {later}, due to ship "
                  f"by {eta}.")
    elif status == "shipped":
        if zh:
            to = f"发往{destination}，" if destination else ""
            text = (f"{name} 已发货：{order.get('shipped_at')} 由{courier}发出，{to}运单号 {tracking}，预计 "
                    f"{order.get('estimated_delivery')} 前后送达。")
        else:
            headline = f"is on its way to {destination}" if destination else "has shipped"
            text = (f"{name} {headline}: it left our warehouse on {order.get('shipped_at')} with {courier}, tracking "
                    f"number {tracking}, and should arrive around {order.get('estimated_delivery')}.")
        due = store.parse_date(order.get("estimated_delivery"))
        if due and store.today() > due:
            text += bi(language, zh=" 目前已超过预计送达时间，我们已经在联系快递核查，有进展会短信通知您；着急的话可"
                                    "以说“转人工”。",
                       en=" It's past the estimated date, so we're already checking with the courier and will text "
                       'you; if it\'s urgent, say "talk to a human".')
    elif status == "delivered":
        text = bi(language, zh=f"{name} 已于 {order.get('delivered_at')} 签收（{courier}，运单号 {tracking}）。",
                  en=f"{name} was delivered on {order.get('delivered_at')} ({courier}, tracking number {tracking}).")
    elif status == "cancelled":
        text = bi(language, zh=f"{name} 已于 {order.get('cancelled_at')} 取消，款项已原路退回（1–3 个工作日到账）。",
                  en=f"{name} was cancelled on {order.get('cancelled_at')}; the payment went back to your original "
                  "payment method (it takes 1–3 business days to show).")
    elif status == "refunded":
        text = bi(language, zh=f"{name} 已退货，退款已于 {order.get('refunded_at')} 原路退回。",
                  en=f"{name} was returned and refunded on {order.get('refunded_at')} to your original payment "
                  "method.")
    else:
        text = bi(language, zh=f"{name} 的状态：{status}。", en=f"{name}: status {status}.")
    if items and status != "partially_shipped":
        text += f"商品：{items}。" if zh else f" Items: {items}."
    for rma in order.get("returns") or []:
        text += bi(language, zh=f"退货 {rma.get('rma')}：{say(rma.get('status_text'), 'zh')}。",
                   en=f" Return {rma.get('rma')}: {say(rma.get('status_text'), 'en')}.")
    if status == "delivered" and not order.get("returns"):
        text += bi(language, zh="如有问题，签收后 7 天内可申请无理由退货。",
                   en=" If something isn't right, you can return it within 7 days of delivery.")
    return text


# -- validation shared by the order and return forms ---------------------------------------------------------------

AfterVerified = Callable[[dict[str, Any]], dict[str, Any]]


def _no_more(_order: dict[str, Any]) -> dict[str, Any]:
    return {}


def _nothing() -> dict[str, Any]:
    return {}


def check_order_id(value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                   after_verified: AfterVerified = _no_more,
                   after_failed: Callable[[], dict[str, Any]] = _nothing) -> dict[str, Any]:
    """Slots for an order number the shopper gave: rejected (None) with a message, or the order's number and,
    when the conversation is already known to be its customer, `verify_contact` filled so it is not asked.
    `after_verified(order)` / `after_failed()`: more slots to fill then (the return form skips questions)."""
    language = shopper_language(tracker)
    order_id = normalize_order_id(value)
    if order_id is None:
        dispatcher.utter_message(response="utter_invalid_order_id")
        return {"order_id": None}
    try:
        order = store.find_order(order_id, store.load_orders())
    except store.StoreError as exc:
        logger.error("order lookup unavailable: %s", exc)
        return {"order_id": order_id, "verify_contact": FAILED, **after_failed()}  # the action says so
    if order is None:
        dispatcher.utter_message(text=not_found_message(order_id, language))
        return {"order_id": None}
    slots: dict[str, Any] = {"order_id": order["id"]}
    if authorized(tracker, order):
        return {**slots, "verify_contact": SIGNED_IN, **after_verified(order)}
    if (tracker.get_slot("verify_attempts") or 0) >= MAX_ATTEMPTS:
        dispatcher.utter_message(text=too_many_attempts_message(language))
        return {**slots, "verify_contact": FAILED, **after_failed()}
    if signed_in_customer(tracker):
        dispatcher.utter_message(text=not_on_account_message(order["id"], language))
    return {**slots, "verify_contact": None}


def check_contact(value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                  owners: list[dict[str, Any] | None], customer: dict[str, Any] | None,
                  after_verified: Callable[[], dict[str, Any]] = _nothing,
                  after_failed: Callable[[], dict[str, Any]] = _nothing) -> dict[str, Any]:
    """Slots for the phone number / e-mail the shopper typed to prove who they are. Every value is treated as
    typed text (a shopper typing "account" proves nothing); a match remembers the customer."""
    language = shopper_language(tracker)
    contact = parse_contact(value)
    if contact is None:
        dispatcher.utter_message(text=not_a_contact_message(language))
        return {"verify_contact": None}
    if contact_matches(contact, *owners):
        slots: dict[str, Any] = {"verify_contact": mask(contact), "verify_attempts": 0}
        if customer:
            slots.update(customer_id=customer["id"], customer_tier=customer.get("tier"))
        return {**slots, **after_verified()}
    attempts = int(tracker.get_slot("verify_attempts") or 0) + 1
    if attempts >= MAX_ATTEMPTS:
        dispatcher.utter_message(text=too_many_attempts_message(language))
        return {"verify_contact": FAILED, "verify_attempts": attempts, **after_failed()}
    dispatcher.utter_message(text=mismatch_message(language, MAX_ATTEMPTS - attempts))
    return {"verify_contact": None, "verify_attempts": attempts}


def check_order_contact(value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                        after_verified: AfterVerified = _no_more,
                        after_failed: Callable[[], dict[str, Any]] = _nothing) -> dict[str, Any]:
    try:
        order = store.find_order(str(tracker.get_slot("order_id") or ""), store.load_orders())
        customers = store.load_customers()
    except store.StoreError as exc:
        logger.error("order lookup unavailable: %s", exc)
        return {"verify_contact": FAILED, **after_failed()}
    if order is None:  # the number was rejected meanwhile; the form asks for it again
        return {"verify_contact": None}
    customer = customers.get(str(order.get("customer_id")))
    return check_contact(value, dispatcher, tracker, [customer], customer, lambda: after_verified(order),
                         after_failed)


class ValidateOrderStatusForm(FormValidationAction):
    """Order number (it must exist), then the phone number or e-mail on it unless the shopper is known."""

    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_id(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> dict[str, Any]:
        return check_order_id(slot_value, dispatcher, tracker)

    def validate_verify_contact(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        return check_order_contact(slot_value, dispatcher, tracker)


class ActionOrderStatus(Action):
    """Tells the shopper where their order is — only if the conversation is known to be its customer's."""

    def name(self) -> str:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        order_id = normalize_order_id(tracker.get_slot("order_id"))
        if order_id is None:
            dispatcher.utter_message(response="utter_ask_order_id")
            return list(ORDER_SLOTS_RESET)
        try:
            order = store.find_order(order_id, store.load_orders())
        except store.StoreError as exc:
            logger.error("cannot read the shop's orders: %s", exc)
            dispatcher.utter_message(text=lookup_unavailable_message(language))
            return list(ORDER_SLOTS_RESET)
        if order is None:
            dispatcher.utter_message(text=not_found_message(order_id, language))
        elif not authorized(tracker, order):
            if not gave_up_checking(tracker):  # else the form's validation already said why
                dispatcher.utter_message(text=cannot_show_message(order["id"], language))
        else:
            dispatcher.utter_message(text=describe_order(order, language))
        # Forget the number, so the next "where is my order" asks for the order the shopper means then.
        return list(ORDER_SLOTS_RESET)
