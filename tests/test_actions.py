"""The demo shop's custom actions, called directly with rasa-sdk's Tracker and CollectingDispatcher."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the project's `actions` package, as the engine loads it (bot/actions.py)
    sys.path.insert(0, str(ROOT))

from actions.actions import (  # noqa: E402
    ORDERS_ENV,
    ActionOrderStatus,
    ValidateOrderStatusForm,
    load_orders,
    normalize_order_id,
)

DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def make_tracker(
    slots: dict[str, Any] | None = None,
    text: str = "",
    intent: str = "inform",
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
) -> Tracker:
    all_slots = {"language": None, "order_id": None, "requested_slot": None, **(slots or {})}
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": []}
    return Tracker(
        sender_id="shopper-1",
        slots=all_slots,
        latest_message=latest,
        events=events or [{"event": "user", "text": text, "parse_data": latest}],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def order_status(slots: dict[str, Any], text: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = ActionOrderStatus().run(dispatcher, make_tracker(slots, text), DOMAIN)
    return dispatcher.messages, events


# -- action_order_status -------------------------------------------------------------------------------------


def test_shipped_order_in_english_has_courier_tracking_number_and_dates():
    messages, events = order_status({"language": "en", "order_id": "KF20240001"})
    assert len(messages) == 1
    text = messages[0]["text"]
    assert "KF20240001" in text and "has shipped" in text
    assert "SF Express" in text and "SF1402837561924" in text
    assert "2024-11-22" in text  # estimated delivery
    assert "Ceramic mug" in text
    assert not re.search(r"[\u4e00-\u9fff]", text), "an English answer must not contain Chinese"
    assert events == [SlotSet("order_id", None)]  # the next lookup asks for a number again


def test_shipped_order_in_chinese():
    messages, _ = order_status({"language": "zh", "order_id": "KF20240001"})
    text = messages[0]["text"]
    assert "已发货" in text and "顺丰速运" in text and "SF1402837561924" in text
    assert "天蓝色陶瓷马克杯" in text
    assert "shipped" not in text and "SF Express" not in text


def test_processing_order_says_when_it_ships():
    en, _ = order_status({"language": "en", "order_id": "KF20240002"})
    zh, _ = order_status({"language": "zh", "order_id": "KF20240002"})
    assert "being packed" in en[0]["text"] and "2024-11-21" in en[0]["text"]
    assert "备货中" in zh[0]["text"] and "2024-11-21" in zh[0]["text"]


def test_delivered_order_mentions_the_return_window():
    en, _ = order_status({"language": "en", "order_id": "KF20240003"})
    zh, _ = order_status({"language": "zh", "order_id": "KF20240003"})
    assert "delivered on 2024-11-13" in en[0]["text"] and "ZT7731056482019" in en[0]["text"]
    assert "7 days" in en[0]["text"]
    assert "签收" in zh[0]["text"] and "中通快递" in zh[0]["text"] and "7 天" in zh[0]["text"]


def test_international_order_names_the_destination():
    en, _ = order_status({"language": "en", "order_id": "KF20240004"})
    zh, _ = order_status({"language": "zh", "order_id": "KF20240004"})
    assert "Singapore" in en[0]["text"] and "EE204815736CN" in en[0]["text"]
    assert "新加坡" in zh[0]["text"]


def test_lowercase_number_and_number_without_kf_prefix_find_the_order():
    messages, _ = order_status({"language": "en", "order_id": "kf20240001"})
    assert "SF1402837561924" in messages[0]["text"]
    messages, _ = order_status({"language": "en", "order_id": "20240001"})
    assert "KF20240001" in messages[0]["text"] and "SF1402837561924" in messages[0]["text"]


def test_marketplace_order_number():
    messages, _ = order_status({"language": "zh", "order_id": "3658201947"})
    assert "天猫旗舰店" in messages[0]["text"] and "3658201947" in messages[0]["text"]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "couldn't find an order with the number KF20239999"),
        ("zh", "没有查到订单号为 KF20239999 的订单"),
    ],
)
def test_unknown_order_says_not_found(language, expected):
    messages, events = order_status({"language": language, "order_id": "KF20239999"})
    assert len(messages) == 1
    assert expected in messages[0]["text"]
    assert events == [SlotSet("order_id", None)]


def test_language_falls_back_to_the_message_when_the_slot_is_empty():
    zh, _ = order_status({"order_id": "KF20240001"}, text="帮我查下订单 KF20240001")
    en, _ = order_status({"order_id": "KF20240001"}, text="where is KF20240001")
    assert "已发货" in zh[0]["text"]
    assert "has shipped" in en[0]["text"]


def test_without_an_order_number_it_asks_for_one():
    messages, events = order_status({"language": "en"})
    assert [m["response"] for m in messages] == ["utter_ask_order_id"]
    assert events == [SlotSet("order_id", None)]


def test_missing_orders_file_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv(ORDERS_ENV, str(tmp_path / "nope.json"))
    messages, _ = order_status({"language": "en", "order_id": "KF20240001"})
    assert "can't look up orders right now" in messages[0]["text"]


def test_orders_file_can_be_replaced(monkeypatch, tmp_path):
    orders = tmp_path / "orders.json"
    orders.write_text(
        json.dumps(
            {
                "orders": [
                    {
                        "id": "KF11112222",
                        "status": "processing",
                        "ordered_at": "2025-01-02",
                        "estimated_ship": "2025-01-03",
                        "items": [{"name": {"en": "Teapot", "zh": "茶壶"}, "qty": 1}],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(ORDERS_ENV, str(orders))
    messages, _ = order_status({"language": "zh", "order_id": "KF11112222"})
    assert "茶壶" in messages[0]["text"]


def test_demo_orders_are_complete():
    orders = load_orders()
    assert len(orders) >= 5
    for order in orders.values():
        assert order["status"] in {"shipped", "processing", "delivered"}
        assert order["items"]
        if order["status"] in {"shipped", "delivered"}:
            assert order["tracking_number"] and order["courier"]["en"] and order["courier"]["zh"]


# -- validate_order_status_form ------------------------------------------------------------------------------


def validate(value: Any, language: str = "en") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the validation action the way the form does: the slot candidate is the tracker's last event."""
    text = str(value)
    latest = {"text": text, "intent": {"name": "inform", "confidence": 0.9}, "entities": []}
    events = [
        {"event": "action", "name": "order_status_form"},
        {"event": "active_loop", "name": "order_status_form"},
        {"event": "slot", "name": "requested_slot", "value": "order_id"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest},
        {"event": "slot", "name": "order_id", "value": value},
    ]
    tracker = make_tracker(
        {"language": language, "order_id": value, "requested_slot": "order_id"},
        text,
        events=events,
        active_loop="order_status_form",
    )
    dispatcher = CollectingDispatcher()
    result = asyncio.run(ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, result


@pytest.mark.parametrize("bad", ["abc", "KF2024001", "KF123", "1234567", "KF202400011", ""])
def test_validation_rejects_a_bad_number(bad):
    messages, events = validate(bad)
    assert events == [SlotSet("order_id", None)]
    assert [m.get("response") for m in messages] == ["utter_invalid_order_id"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("KF20240001", "KF20240001"),
        ("kf20240001", "KF20240001"),
        ("KF 2024 0001", "KF20240001"),
        ("my order number is KF-20240003 thanks", "KF20240003"),
        ("订单号是KF20240005", "KF20240005"),
        ("ＫＦ２０２４０００２", "KF20240002"),
        ("20231234", "20231234"),
        ("天猫订单3658201947", "3658201947"),
    ],
)
def test_validation_accepts_and_normalises_a_good_number(given, canonical):
    messages, events = validate(given)
    assert events == [SlotSet("order_id", canonical)]
    assert messages == []


def test_every_annotated_order_number_in_the_nlu_data_is_valid():
    """The examples teach the entity extractor; each must be a number the form accepts."""
    nlu = (ROOT / "data" / "nlu.yml").read_text(encoding="utf-8")
    annotated = re.findall(r"\[([^\]]+)\]\(order_id\)", nlu)
    assert len(annotated) >= 30
    for value in annotated:
        assert normalize_order_id(value) is not None, value


def test_nlu_regexes_agree_with_the_validation():
    data = yaml.safe_load((ROOT / "data" / "nlu.yml").read_text(encoding="utf-8"))
    block = next(b for b in data["nlu"] if b.get("regex") == "order_id")
    patterns = [re.compile(line.strip()[2:]) for line in block["examples"].splitlines() if line.strip()]
    for text in ["KF20240001", "查订单20231234", "order 3658201947 pls", "kf20240815"]:
        assert any(p.search(text) for p in patterns), text
        assert normalize_order_id(text) is not None
    for text in ["KF2024001", "abc", "KF202400011", "1234567"]:
        assert not any(p.search(text) for p in patterns), text
        assert normalize_order_id(text) is None
