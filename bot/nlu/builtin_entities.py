"""Entities every shop bot needs without training data: order numbers, phone numbers, e-mails, money amounts.

Each finder returns Rasa entity dicts with extractor "BuiltinEntityExtractor". Values are normalised where
an action would otherwise have to: phone numbers and order numbers without spaces or dashes; amounts keep the
text as `value` and carry the number and currency in `additional_info` (like Rasa's Duckling extractor).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

EXTRACTOR = "BuiltinEntityExtractor"

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")

# CN mobile: 1[3-9] + 9 digits, optionally +86 / 0086 and 3-4-4 grouping.
CN_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
# International: a leading + and 7-15 digits in groups; or a North-American (xxx) xxx-xxxx.
INTL_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){1,5}(?!\d)")
NANP_PHONE = re.compile(r"(?<![\w(])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)")

# Order numbers: after an order word ("order", "purchase", "订单", "单号" …, optional "number/no./#/:"),
# an id of 4-30 letters, digits or dashes containing at least 3 digits; or alone, a run of 8-24 digits
# (shorter bare numbers are too often quantities, prices or years).
_ORDER_WORD = (
    r"(?:order|purchase|parcel|package|shipment|tracking|invoice|订单|单号|订单号|运单|运单号|快递单号|包裹)"
    r"(?:\s*(?:number|num|no\.?|id|#|號|号|编号|編號))?\s*[:：#]?\s*"
)
ORDER_AFTER_WORD = re.compile(_ORDER_WORD + r"(?P<id>#?[A-Za-z0-9][A-Za-z0-9-]{3,29})(?![\w-])", re.IGNORECASE)
ORDER_BARE = re.compile(r"(?<![\w+#.-])#?(?P<id>\d{8,24})(?![\w.-])")

_CURRENCY_SIGNS = {"¥": "CNY", "￥": "CNY", "$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_WORDS = {
    "元": "CNY",
    "块": "CNY",
    "块钱": "CNY",
    "人民币": "CNY",
    "rmb": "CNY",
    "cny": "CNY",
    "yuan": "CNY",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "美元": "USD",
    "美金": "USD",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "欧元": "EUR",
    "gbp": "GBP",
    "pounds": "GBP",
    "英镑": "GBP",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_WORDS = "|".join(sorted((re.escape(w) for w in _CURRENCY_WORDS), key=len, reverse=True))
AMOUNT_SIGN = re.compile(r"(?P<cur>[¥￥$€£]|\b(?:RMB|CNY|USD|EUR|GBP))\s?(?P<num>" + _NUMBER + r")(?![\d])", re.I)
AMOUNT_WORD = re.compile(r"(?<![\w.])(?P<num>" + _NUMBER + r")\s?(?P<cur>" + _WORDS + r")(?![A-Za-z])", re.I)


def _entity(name: str, value: Any, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {"entity": name, "value": value, "start": start, "end": end, "extractor": EXTRACTOR, **extra}


def find_emails(text: str) -> list[dict[str, Any]]:
    return [_entity("email", m.group(0), m.start(), m.end()) for m in EMAIL.finditer(text)]


def find_phones(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for pattern in (CN_MOBILE, INTL_PHONE, NANP_PHONE):
        for m in pattern.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if not 7 <= len(digits) <= 15:
                continue
            value = ("+" if m.group(0).startswith("+") else "") + digits
            found.append(_entity("phone", value, m.start(), m.end()))
    return found


def find_order_ids(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for m in ORDER_AFTER_WORD.finditer(text):
        order_id = m.group("id")
        if sum(ch.isdigit() for ch in order_id) >= 3:
            start = m.start("id")
            found.append(_entity("order_id", order_id.lstrip("#").replace("-", ""), start, m.end("id")))
    for m in ORDER_BARE.finditer(text):  # "_bare" ranks it below phones and amounts (entities.py drops it)
        found.append(_entity("order_id", m.group("id"), m.start(), m.end(), _bare=True))
    return found


def find_amounts(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for pattern in (AMOUNT_SIGN, AMOUNT_WORD):
        for m in pattern.finditer(text):
            cur = m.group("cur")
            currency = _CURRENCY_SIGNS.get(cur) or _CURRENCY_WORDS.get(cur.lower()) or cur.upper()
            number = float(m.group("num").replace(",", ""))
            info = {"value": number, "unit": currency}
            found.append(_entity("amount", m.group(0), m.start(), m.end(), additional_info=info))
    return found


FINDERS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "email": find_emails,
    "phone": find_phones,
    "amount": find_amounts,
    "order_id": find_order_ids,
}
