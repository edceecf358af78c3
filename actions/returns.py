"""Returns: the return form (order → who is asking → which item → why → its condition), the eligibility check and
the RMA number (`action_start_return`).

The rules are the shop's (data/faq.yml, return_policy and friends):
- no-reason returns (changed my mind, doesn't fit): within RETURN_DAYS of delivery, unused with tags and
  packaging (food unopened), not for underwear or personalised items; return postage is the shopper's;
- faulty, damaged or wrong items: within FAULT_DAYS of delivery, free pickup; after that, electronics are
  covered by the WARRANTY_DAYS warranty (free repair) instead.
A return that is not possible gets the reason and an offer: the returns team can review it (a ticket).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import opencc
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import store
from actions.identity import NOT_NEEDED, shopper_language
from actions.orders import (
    authorized,
    cannot_show_message,
    check_order_contact,
    check_order_id,
    lookup_unavailable_message,
)
from actions.texts import bi, items_text, say

logger = logging.getLogger(__name__)

RETURN_DAYS = 7
FAULT_DAYS = 15
WARRANTY_DAYS = 365
NO_REASON = ("changed_mind", "doesnt_fit")
OUR_FAULT = ("faulty", "damaged", "wrong_item")
EXCLUDED = ("underwear", "personalised")  # never a no-reason return; food only while unopened
RETURNABLE_STATUS = "delivered"
ALL_ITEMS = "all"
QUESTIONS = ("return_item", "return_reason", "item_condition")
RESET = [SlotSet(s, None) for s in ("order_id", "verify_contact", *QUESTIONS)]

# Typed reasons, checked in this order (a "wrong colour" is a wrong item, "not working" is faulty…).
_REASONS: list[tuple[str, re.Pattern[str]]] = [
    ("wrong_item", re.compile(r"wrong|not what i ordered|different (item|product|colou?r|size|style)|someone else|"
                              r"发错|错发|不是我(买|下单|订)的|不对|不一样|搞错", re.I)),
    ("damaged", re.compile(r"damag|crack|smash|crush|shatter|broken (on|when|in)|arrived broken|in pieces|"
                           r"破损|碎|压坏|摔坏|破了|裂|压扁|烂了", re.I)),
    ("faulty", re.compile(r"faulty|defect|not work|doesn'?t work|stopped|broke|broken|quality|won'?t (turn|charge)|"
                          r"质量|坏了|不能用|故障|瑕疵|开线|不亮|没声音|不工作|问题|毛病|充不进", re.I)),
    ("doesnt_fit", re.compile(r"fit|size|too (small|big|large|tight|loose|long|short)|尺码|尺寸|码|大了|小了|"
                              r"太大|太小|不合身|紧|松", re.I)),
    ("changed_mind", re.compile(r"changed? my mind|don'?t (like|want|need)|no longer|no reason|not (for "
                                 "me|needed)|expect|"
                                r"mistake|by accident|colou?r|style|look|不喜欢|不想要|不要了|不需要|无理由|买错|"
                                r"拍错|买多|后悔|颜色|款式|不好看|七天|7天", re.I)),
]
_UNUSED = re.compile(r"unused|not used|never used|brand new|\bnew\b|tags? (still )?on|with tags|unopened|not opened|"
                     r"sealed|intact|^\W*(yes|yep|yeah|y|sure|correct)\b|没用|没穿|没拆|未拆|未使用|未用|全新|吊牌还在|"
                     r"吊牌在|包装完好|没开封|未开封|^\W*(是|是的|对|对的|嗯|好的|没有用过)\W*$", re.I)
_USED = re.compile(r"used|worn|wore|washed|opened|tags? (off|removed|cut)|cut the tags?|^\W*(no|nope|nah|n)\b|"
                   r"用过|穿过|洗过|拆了|拆封|开封|剪了|吊牌没了|吊牌掉了|打开过|喝过|吃过|"
                   r"^\W*(不是|没有|不)\W*$", re.I)
_ALL = re.compile(r"\b(all|both|every|everything|whole)\b|全部|都退|都要退|全退|两件|两个都|所有|整单", re.I)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
             "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}


# Shoppers in Hong Kong, Macau and Taiwan write traditional characters ("發錯了", "全新未拆"): read as simplified.
_simplified = opencc.OpenCC("t2s").convert


def classify_reason(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    value = _simplified(text.strip())
    if value in NO_REASON + OUR_FAULT:  # a button
        return value
    for reason, pattern in _REASONS:
        if pattern.search(value):
            return reason
    return None


def classify_condition(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    value = _simplified(text.strip().lower())
    if value in ("unused", "used"):
        return value
    if _UNUSED.search(value):
        return "unused"
    if _USED.search(value):
        return "used"
    return None


def pick_items(value: Any, order: dict[str, Any]) -> list[str] | None:
    """The SKUs the shopper means: a button's SKU, "all", a number ("2", "the second one", "第二个") or a name."""
    if not isinstance(value, str) or not value.strip():
        return None
    items = order.get("items") or []
    skus = [str(i.get("sku")) for i in items]
    text = _simplified(value.strip())
    if text in skus:
        return [text]
    if text == ALL_ITEMS or _ALL.search(text):
        return skus
    lowered = text.lower()
    named = [str(i.get("sku")) for i in items
             if any(part and part in lowered for part in _name_keys(i))]
    if len(named) == 1:
        return named
    number = re.search(r"\d+", text)
    index = int(number.group(0)) if number and len(number.group(0)) <= 2 else None
    if index is None:
        index = next((n for word, n in _ORDINALS.items() if re.search(rf"\b{word}\b|第{word}|{word}(个|件)", lowered)),
                     None)
    if index is not None and 1 <= index <= len(skus):
        return [skus[index - 1]]
    return None


def _name_keys(item: dict[str, Any]) -> list[str]:
    """Words that name an item (its `keywords` in the orders data: "scarf", "围巾"…)."""
    return [str(k).lower() for k in item.get("keywords") or []]


@dataclass
class Verdict:
    item: dict[str, Any]
    eligible: bool
    why: str  # ok | excluded | late | used | late_fault | warranty | open_return


def judge(item: dict[str, Any], reason: str, condition: str | None, days: int, open_return: str | None) -> Verdict:
    if open_return:
        return Verdict(item, False, "open_return")
    category = item.get("category")
    if reason in OUR_FAULT:
        if days <= FAULT_DAYS:
            return Verdict(item, True, "ok")
        if category == "electronics" and days <= WARRANTY_DAYS:
            return Verdict(item, False, "warranty")
        return Verdict(item, False, "late_fault")
    if category in EXCLUDED:
        return Verdict(item, False, "excluded")
    if days > RETURN_DAYS:
        return Verdict(item, False, "late")
    if condition == "used":
        return Verdict(item, False, "used")
    return Verdict(item, True, "ok")


def _why_text(verdict: Verdict, language: str) -> str:
    name = say(verdict.item.get("name"), language)
    category = verdict.item.get("category")
    zh = {
        "excluded": f"{name}属于{'内衣' if category == 'underwear' else '定制商品'}，不支持无理由退货",
        "late": f"{name}已签收超过 {RETURN_DAYS} 天，过了无理由退货期",
        "used": f"{name}{'已拆封' if category == 'food' else '已使用或吊牌、包装不完整'}，不能无理由退货",
        "late_fault": f"{name}已签收超过 {FAULT_DAYS} 天，过了质量问题退换期",
        "warranty": f"{name}已签收超过 {FAULT_DAYS} 天，不能退货了，但仍在 1 年保修期内，可以免费维修："
                    "在“我的订单”→“售后”→“维修”申请，我们免费上门取件",
        "open_return": f"{name}已经有一个进行中的退货",
    }
    en = {
        "excluded": f"the {name} is {'underwear' if category == 'underwear' else 'a personalised item'}, which "
                    "can't be returned without a fault",
        "late": f"the {name} was delivered more than {RETURN_DAYS} days ago, past the no-reason return window",
        "used": f"the {name} "
                f"{'has been opened' if category == 'food' else 'has been used or lost its tags or packaging'}, "
                "so it can't be returned without a fault",
        "late_fault": f"the {name} was delivered more than {FAULT_DAYS} days ago, past the window for faulty items",
        "warranty": f"the {name} was delivered more than {FAULT_DAYS} days ago, so it can't be returned — but it's "
                    "still under its 1-year warranty: request a free repair under \"My orders\" → \"After-sales\" → "
                    "\"Repair\" and we'll collect it for free",
        "open_return": f"the {name} already has a return in progress",
    }
    return (zh if language == "zh" else en)[verdict.why]


def after_verified(order: dict[str, Any]) -> dict[str, Any]:
    """Questions the form can skip once the order is known to be the shopper's."""
    if order.get("status") != RETURNABLE_STATUS:
        return {slot: NOT_NEEDED for slot in QUESTIONS}  # action_start_return explains what to do instead
    items = order.get("items") or []
    return {"return_item": str(items[0].get("sku"))} if len(items) == 1 else {}


def after_failed() -> dict[str, Any]:
    return {slot: NOT_NEEDED for slot in QUESTIONS}


def _order(tracker: Tracker) -> dict[str, Any] | None:
    try:
        return store.find_order(str(tracker.get_slot("order_id") or ""), store.load_orders())
    except store.StoreError:
        return None


def _days_since_delivery(order: dict[str, Any]) -> int:
    delivered = store.parse_date(order.get("delivered_at"))
    return (store.today() - delivered).days if delivered else 0


class ValidateReturnForm(FormValidationAction):
    def name(self) -> str:
        return "validate_return_form"

    def validate_order_id(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> dict[str, Any]:
        return check_order_id(slot_value, dispatcher, tracker, after_verified, after_failed)

    def validate_verify_contact(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        return check_order_contact(slot_value, dispatcher, tracker, after_verified, after_failed)

    def validate_return_item(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> dict[str, Any]:
        order = _order(tracker)
        skus = pick_items(slot_value, order) if order and authorized(tracker, order) else None
        if not skus:
            dispatcher.utter_message(text=bi(shopper_language(tracker),
                                             zh="请点一下要退的商品，或者发它的序号（例如 1）。",
                                             en="Which item? Tap it, or send its number (e.g. 1)."))
            return {"return_item": None}
        return {"return_item": ",".join(skus)}

    def validate_return_reason(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> dict[str, Any]:
        reason = classify_reason(slot_value)
        if reason is None:
            dispatcher.utter_message(text=bi(shopper_language(tracker),
                                             zh="没太明白退货原因，请选一个最接近的：",
                                             en="Sorry, I didn't get the reason — please pick the closest one:"))
            return {"return_reason": None}
        slots: dict[str, Any] = {"return_reason": reason}
        order = _order(tracker)
        if reason in OUR_FAULT or order is None:
            return {**slots, "item_condition": NOT_NEEDED}  # condition does not matter for our mistakes
        chosen = set(str(tracker.get_slot("return_item") or "").split(","))
        items = [i for i in order.get("items") or [] if str(i.get("sku")) in chosen]
        if _days_since_delivery(order) > RETURN_DAYS or all(i.get("category") in EXCLUDED for i in items):
            slots["item_condition"] = NOT_NEEDED  # not returnable whatever its condition: no need to ask
        return slots

    def validate_item_condition(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        condition = classify_condition(slot_value)
        if condition is None:
            dispatcher.utter_message(text=bi(shopper_language(tracker), zh="请选择商品目前的状态：",
                                             en="Please pick the one that fits:"))
            return {"item_condition": None}
        return {"item_condition": condition}


class ActionAskReturnItem(Action):
    """Which item to return: the order's items as buttons (only shown once the order is known to be theirs)."""

    def name(self) -> str:
        return "action_ask_return_item"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        order = _order(tracker)
        if order is None or not authorized(tracker, order):
            dispatcher.utter_message(text=bi(language, zh="请问要退哪件商品？",
                                             en="Which item would you like to return?"))
            return []
        items = order.get("items") or []
        lines = [f"{n}. {say(i.get('name'), language)} ×{i.get('qty', 1)}" for n, i in enumerate(items, 1)]
        buttons = [{"title": say(i.get("name"), language), "payload": f'/inform{{"return_item": "{i.get("sku")}"}}'}
                   for i in items]
        buttons.append({"title": bi(language, zh="全部都退", en="All of them"),
                        "payload": f'/inform{{"return_item": "{ALL_ITEMS}"}}'})
        intro = bi(language, zh=f"订单 {order['id']} 里有这些商品，要退哪一件？",
                   en=f"Order {order['id']} has these items — which one would you like to return?")
        dispatcher.utter_message(text=intro + "\n" + "\n".join(lines), buttons=buttons)
        return []


class ActionStartReturn(Action):
    """Checks the return against the rules and starts it (RMA number), or says why not and offers a review."""

    def name(self) -> str:
        return "action_start_return"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        events: list[EventType] = [*RESET, SlotSet("return_outcome", None), SlotSet("ticket_context", None)]
        try:
            order = store.find_order(str(tracker.get_slot("order_id") or ""), store.load_orders())
        except store.StoreError as exc:
            logger.error("cannot read the shop's orders: %s", exc)
            dispatcher.utter_message(text=lookup_unavailable_message(language))
            return events
        if order is None:
            dispatcher.utter_message(response="utter_ask_return_form_order_id")
            return events
        if not authorized(tracker, order):
            dispatcher.utter_message(text=cannot_show_message(order["id"], language))
            return events
        status = order.get("status")
        if status != RETURNABLE_STATUS:
            dispatcher.utter_message(text=self._not_delivered(order, language))
            return events
        chosen = set(str(tracker.get_slot("return_item") or "").split(","))
        items = [i for i in order.get("items") or [] if str(i.get("sku")) in chosen]
        reason = str(tracker.get_slot("return_reason") or "changed_mind")
        condition = tracker.get_slot("item_condition")
        if not items:
            dispatcher.utter_message(text=bi(language, zh="抱歉，没找到要退的商品，请重新说一下“我要退货”。",
                                             en="Sorry, I lost track of the item — please say "
                                             '"I want to return" again.'))
            return events
        days = _days_since_delivery(order)
        open_returns = {sku: r.get("rma") for r in store.returns_of(order["id"]) for sku in r.get("items") or []}
        verdicts = [judge(i, reason, condition, days, open_returns.get(str(i.get("sku")))) for i in items]
        ok = [v for v in verdicts if v.eligible]
        refused = [v for v in verdicts if not v.eligible]
        parts: list[str] = []
        if ok:
            rma = store.start_return(order, [str(v.item.get("sku")) for v in ok], reason,
                                     tracker.get_slot("customer_id"), tracker.sender_id)
            parts.append(self._started(rma["rma"], [v.item for v in ok], reason, language))
        if refused:
            why = "；".join(_why_text(v, language) for v in refused) if language == "zh" else "; ".join(
                _why_text(v, language) for v in refused)
            parts.append(bi(language, zh=f"抱歉，{why}。", en=f"Sorry — {why}."))
        reviewable = [v for v in refused if v.why in ("excluded", "late", "used", "late_fault")]
        if reviewable:
            parts.append(bi(language, zh="如果您觉得情况特殊，我可以开一个工单请退货团队复核"
                                         "（24 小时内回复）。需要吗？",
                            en="If you think this is a special case, I can open a ticket for our returns team to "
                            "review it (they reply within 24 hours). Shall I?"))
            summary = (f"Return review for order {order['id']}: "
                       + "; ".join(f"{say(v.item.get('name'), 'en')} ({v.why})" for v in reviewable)
                       + f"; reason {reason}; {days} days since delivery")
            events += [SlotSet("return_outcome", "ineligible"), SlotSet("ticket_context", summary)]
        dispatcher.utter_message(text="\n".join(parts))
        return events

    @staticmethod
    def _started(rma: str, items: list[dict[str, Any]], reason: str, language: str) -> str:
        names = items_text(items, language)
        if reason in OUR_FAULT:
            return bi(language,
                      zh=f"已为您申请退货，退货单号 {rma}（{names}）。我们会免费预约顺丰上门取件，请保留商品和包装；"
                      "仓库收到后 1–3 个工作日内原路退款，也可以改为换新。",
                      en=f"Your return is started: {rma} ({names}). We'll book a free SF pickup — please keep the "
                      "item and its packaging ready. We refund to your original payment method within 1–3 business "
                      "days after it reaches us (or send a replacement if you prefer).")
        return bi(language,
                  zh=f"已为您申请退货，退货单号 {rma}（{names}）。请在 7 天内寄回（运费自理，不接受到付），退货地址在"
                  "“我的订单”→“退货详情”，记得填写运单号。仓库收到后 1–3 个工作日内原路退款。",
                  en=f"Your return is started: {rma} ({names}). Please send it back within 7 days — return postage "
                  "is yours, and we can't accept freight collect. The address is under \"My orders\" → \"Return "
                  "details\"; remember to add the tracking number. We refund to your original payment method "
                  "within 1–3 business days after it arrives.")

    @staticmethod
    def _not_delivered(order: dict[str, Any], language: str) -> str:
        oid, status = order["id"], order.get("status")
        if status in ("pending_payment", "processing", "preorder"):
            return bi(language, zh=f"订单 {oid} 还没有发货，不需要退货：在“我的订单”里直接取消就行，免费，"
                                   "款项 1–3 个工作日内原路退回。",
                      en=f"Order {oid} hasn't shipped yet, so there's nothing to send back: cancel it under \"My "
                      "orders\" — it's free, and the refund reaches you within 1–3 business days.")
        if status in ("shipped", "partially_shipped"):
            return bi(language, zh=f"订单 {oid} 还在配送途中。签收后 7 天内可以申请退货，也可以直接拒收。",
                      en=f"Order {oid} is still on its way. Once it's delivered you can return it within 7 days — "
                      "or simply refuse the parcel.")
        return bi(language, zh=f"订单 {oid} 已经取消或退款了，没有需要退的商品。",
                  en=f"Order {oid} has already been cancelled or refunded, so there's nothing to return.")


class ActionSkipReview(Action):
    """The shopper does not want the review ticket the bot offered."""

    def name(self) -> str:
        return "action_skip_review"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("return_outcome", None), SlotSet("ticket_context", None)]
