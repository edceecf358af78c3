"""Custom actions of the kefu demo shop (rasa-sdk): the order-status form's validation and the order lookup.

The same code runs in-process (the default) or on a rasa-sdk action server (`kefu actions`).
Replies follow the shopper's language: the `language` slot (zh / en) that the engine sets on every message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

logger = logging.getLogger(__name__)

# data/shop/orders.json next to this project; KEFU_SHOP_ORDERS points elsewhere (e.g. a real export).
DEFAULT_ORDERS_FILE = Path(__file__).resolve().parent.parent / "data" / "shop" / "orders.json"
ORDERS_ENV = "KEFU_SHOP_ORDERS"

# Our order numbers: "KF" + 8 digits (also typed "kf 2024 0001", "KF-20240001").
_KF_NUMBER = re.compile(r"(?<![A-Z0-9])KF[\s\-]*(\d{4})[\s\-]?(\d{4})(?!\d)")
# Digits only: 8 digits is one of ours without "KF"; 9–12 digits is a marketplace (e.g. Tmall) order number.
_DIGITS_NUMBER = re.compile(r"(?<![A-Z0-9])(\d{8,12})(?!\d)")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


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


def shopper_language(tracker: Tracker) -> str:
    """zh or en: the `language` slot, else a guess from the latest message (Chinese characters → zh)."""
    language = tracker.get_slot("language")
    if language in ("zh", "en"):
        return language
    text = (tracker.latest_message or {}).get("text") or ""
    return "zh" if _CJK.search(text) else "en"


def orders_file() -> Path:
    return Path(os.environ.get(ORDERS_ENV) or DEFAULT_ORDERS_FILE)


def load_orders(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Orders by id. Raises OSError / ValueError when the file is missing or not valid JSON."""
    with open(path or orders_file(), encoding="utf-8") as handle:
        data = json.load(handle)
    orders = data.get("orders", []) if isinstance(data, dict) else data
    return {str(order["id"]).upper(): order for order in orders if isinstance(order, dict) and "id" in order}


def find_order(order_id: str, orders: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The order with this number; 8 bare digits also match our "KF" number with those digits."""
    key = order_id.upper()
    found = orders.get(key)
    if found is None and key.isdigit() and len(key) == 8:
        found = orders.get("KF" + key)
    return found


def _text(value: Any, language: str) -> str:
    """A bilingual field ({"en": …, "zh": …}) or a plain string, in `language`."""
    if isinstance(value, dict):
        return str(value.get(language) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _items(order: dict[str, Any], language: str) -> str:
    items = order.get("items") or []
    if language == "zh":
        return "、".join(f"{_text(i.get('name'), 'zh')} ×{i.get('qty', 1)}" for i in items)
    return "; ".join(f"{i.get('qty', 1)} × {_text(i.get('name'), 'en')}" for i in items)


def describe_order(order: dict[str, Any], language: str) -> str:
    """One message with the order's status, courier, tracking number, dates and items, in `language`."""
    oid = order["id"]
    status = order.get("status")
    courier = _text(order.get("courier"), language)
    tracking = order.get("tracking_number", "")
    items = _items(order, language)
    channel = _text(order.get("channel"), language)
    destination = _text(order.get("destination"), language)
    ordered_at, shipped_at = order.get("ordered_at", ""), order.get("shipped_at", "")
    delivered_at = order.get("delivered_at", "")
    estimated_ship, estimated_delivery = order.get("estimated_ship", ""), order.get("estimated_delivery", "")
    if language == "zh":
        name = f"{channel}订单 {oid}" if channel else f"订单 {oid}"
        if status == "shipped":
            to = f"发往{destination}，" if destination else ""
            text = (
                f"{name} 已发货：{shipped_at} 由{courier}发出，{to}运单号 {tracking}，"
                f"预计 {estimated_delivery} 前后送达。"
            )
        elif status == "delivered":
            text = f"{name} 已于 {delivered_at} 签收（{courier}，运单号 {tracking}）。"
        elif status == "processing":
            text = (
                f"{name}（{ordered_at} 下单）正在备货中，预计 {estimated_ship} "
                "发出，发货后会短信通知您运单号。"
            )
        else:
            text = f"{name} 的状态：{status}。"
        if items:
            text += f"商品：{items}。"
        return text + ("如有问题，签收后 7 天内可申请退货。" if status == "delivered" else "")
    name = f"Order {oid} from {channel}" if channel else f"Order {oid}"
    if status == "shipped":
        headline = f"is on its way to {destination}" if destination else "has shipped"
        text = (
            f"{name} {headline}: it left our warehouse on {shipped_at} with {courier}, "
            f"tracking number {tracking}, and should arrive around {estimated_delivery}."
        )
    elif status == "delivered":
        text = f"{name} was delivered on {delivered_at} ({courier}, tracking number {tracking})."
    elif status == "processing":
        text = (
            f"{name} (placed {ordered_at}) is being packed and should ship by "
            f"{estimated_ship}. You'll get the tracking number by text as soon as it leaves "
            "our warehouse."
        )
    else:
        text = f"{name}: status {status}."
    if items:
        text += f" Items: {items}."
    return text + (
        " If something isn't right, you can return it within 7 days of delivery."
        if status == "delivered"
        else ""
    )


def not_found_message(order_id: str, language: str) -> str:
    if language == "zh":
        return (
            f"抱歉，没有查到订单号为 {order_id} 的订单。请核对一下下单短信或“我的订单”里的订单号，"
            "也可以说“转人工”，让同事帮您查。"
        )
    return (
        f"Sorry, I couldn't find an order with the number {order_id}. Please check it against your order "
        'confirmation or "My orders" — or say "talk to a human" and a colleague will look into it.'
    )


def lookup_unavailable_message(language: str) -> str:
    if language == "zh":
        return "抱歉，订单查询暂时无法使用，请稍后再试，或者说“转人工”联系人工客服。"
    return "Sorry, I can't look up orders right now. Please try again in a moment, or ask for a person."


class ValidateOrderStatusForm(FormValidationAction):
    """Checks the order number the shopper gave; a bad one gets utter_invalid_order_id and is asked again."""

    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        order_id = normalize_order_id(slot_value)
        if order_id is None:
            dispatcher.utter_message(response="utter_invalid_order_id")
            return {"order_id": None}
        return {"order_id": order_id}


class ActionOrderStatus(Action):
    """Looks the order up in the shop's orders and tells the shopper where it is, in their language."""

    def name(self) -> str:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = shopper_language(tracker)
        order_id = normalize_order_id(tracker.get_slot("order_id"))
        if order_id is None:
            dispatcher.utter_message(response="utter_ask_order_id")
            return [SlotSet("order_id", None)]
        try:
            orders = load_orders()
        except (OSError, ValueError) as exc:
            logger.error("cannot read the shop's orders from %s: %s", orders_file(), exc)
            dispatcher.utter_message(text=lookup_unavailable_message(language))
            return [SlotSet("order_id", None)]
        order = find_order(order_id, orders)
        if order is None:
            dispatcher.utter_message(text=not_found_message(order_id, language))
        else:
            dispatcher.utter_message(text=describe_order(order, language))
        # Forget the number, so the next "where is my order" asks for the order the shopper means then.
        return [SlotSet("order_id", None)]
