"""The demo shop's custom actions, called directly with rasa-sdk's Tracker and CollectingDispatcher.

"Today" is pinned to the demo data's `as_of` (KEFU_SHOP_TODAY), so dates read as written in data/shop/, and what
the bot writes (returns, tickets) goes to a file per test (KEFU_SHOP_STATE).
"""

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
if str(ROOT) not in sys.path:  # the project's `actions` package, as the engine loads it (bot/action_runner.py)
    sys.path.insert(0, str(ROOT))

from actions import store  # noqa: E402
from actions.identity import FAILED, NOT_NEEDED, SIGNED_IN, mask, parse_contact  # noqa: E402
from actions.orders import ActionOrderStatus, ValidateOrderStatusForm, describe_order, normalize_order_id  # noqa: E402
from actions.returns import (  # noqa: E402
    ActionAskReturnItem,
    ActionSkipReview,
    ActionStartReturn,
    ValidateReturnForm,
    classify_condition,
    classify_reason,
    judge,
    pick_items,
)
from actions.tickets import (  # noqa: E402
    ActionCreateTicket,
    ActionTicketStatus,
    ValidateTicketStatusForm,
    normalize_ticket_id,
)

DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
AS_OF = json.loads((ROOT / "data" / "shop" / "orders.json").read_text(encoding="utf-8"))["as_of"]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def demo_day(monkeypatch, tmp_path):
    monkeypatch.setenv(store.TODAY_ENV, AS_OF)
    monkeypatch.setenv(store.STATE_ENV, str(tmp_path / "shop-state.json"))
    for env in (store.ORDERS_ENV, store.CUSTOMERS_ENV, store.TICKETS_ENV):
        monkeypatch.delenv(env, raising=False)


def make_tracker(slots: dict[str, Any] | None = None, text: str = "", metadata: dict[str, Any] | None = None,
                 events: list[dict[str, Any]] | None = None, active_loop: str | None = None,
                 sender: str = "shopper-1", metadata_in_latest: bool = True) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]} | {"requested_slot": None, **(slots or {})}
    latest = {"text": text, "intent": {"name": "inform", "confidence": 0.99}, "entities": []}
    if metadata and metadata_in_latest:
        latest["metadata"] = metadata
    user = {"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}}
    return Tracker(sender_id=sender, slots=all_slots, latest_message=latest, events=[user, *(events or [])],
                   paused=False, followup_action=None, active_loop={"name": active_loop} if active_loop else {},
                   latest_action_name="action_listen")


def run(action, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    result = action.run(dispatcher, tracker, DOMAIN)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return dispatcher.messages, result


def texts(messages: list[dict[str, Any]]) -> str:
    return " ".join(m.get("text") or m.get("response") or "" for m in messages)


def validate(form_action, slots: dict[str, Any], candidates: dict[str, Any], language: str = "en",
             metadata: dict[str, Any] | None = None, form: str = "order_status_form", sender: str = "shopper-1"):
    """Run a form's validation the way the engine does: this turn's slot candidates are the last events."""
    events = [{"event": "slot", "name": k, "value": v} for k, v in candidates.items()]
    tracker = make_tracker({"language": language, **slots, **candidates}, " ".join(map(str, candidates.values())),
                           metadata, events, active_loop=form, sender=sender)
    return run(form_action, tracker)


def as_dict(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


# -- order numbers -------------------------------------------------------------------------------------------------


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
        ("abc", None),
        ("KF2024001", None),
        ("KF202400011", None),
        ("1234567", None),
        ("13800138001", None),  # a mobile number, not an order
        ("T-20241120-0001", None),  # a ticket number, not an order
    ],
)
def test_order_numbers_are_normalised(given, canonical):
    assert normalize_order_id(given) == canonical


def test_every_annotated_order_number_in_the_nlu_data_is_valid():
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
    for text in ["KF2024001", "abc", "KF202400011", "1234567", "13800138001", "T-20241120-0001"]:
        assert not any(p.search(text) for p in patterns), text
        assert normalize_order_id(text) is None
    ticket = next(b for b in data["nlu"] if b.get("regex") == "ticket_id")
    pattern = re.compile(ticket["examples"].strip()[2:])
    for text in ["T-20241120-0001", "t20241120-0001", "ticket T-20241122-0002 pls"]:
        assert pattern.search(text) and normalize_ticket_id(text), text


# -- the demo data -------------------------------------------------------------------------------------------------


def test_demo_orders_cover_every_case_and_belong_to_known_customers():
    orders, customers = store.load_orders(), store.load_customers()
    assert len(orders) >= 20
    statuses = {o["status"] for o in orders.values()}
    assert statuses >= {"pending_payment", "processing", "preorder", "partially_shipped", "shipped", "delivered",
                        "cancelled", "refunded"}
    categories = {i["category"] for o in orders.values() for i in o["items"]}
    assert categories >= {"underwear", "personalised", "food", "electronics", "clothing"}
    for order in orders.values():
        assert order["customer_id"] in customers, order["id"]
        assert order["items"] and all(i["sku"] and i["name"]["en"] and i["name"]["zh"] for i in order["items"])
        if order["status"] in {"shipped", "delivered"}:
            assert order["tracking_number"] and order["courier"]["en"] and order["courier"]["zh"]
    assert {c["tier"] for c in customers.values()} == {"member", "silver", "gold"}


def test_demo_dates_move_with_today(monkeypatch):
    monkeypatch.setenv(store.TODAY_ENV, "2030-01-10")
    order = store.load_orders()["KF20240003"]
    assert order["delivered_at"] == "2030-01-07"  # delivered 3 days before "today", whatever the day
    assert store.tickets().get("T-20241122-0002")["created_at"] == "2030-01-07"


# -- action_order_status: who may see what ------------------------------------------------------------------------


def order_status(slots: dict[str, Any], metadata: dict[str, Any] | None = None, text: str = "", **kw):
    return run(ActionOrderStatus(), make_tracker(slots, text, metadata, **kw))


def test_signed_in_owner_sees_the_order_in_english():
    messages, events = order_status({"language": "en", "order_id": "KF20240001"}, {"customer_id": "C1001"})
    text = messages[0]["text"]
    assert "KF20240001" in text and "has shipped" in text and "SF Express" in text and "SF1402837561924" in text
    assert "2024-11-26" in text and "Ceramic mug" in text
    assert not CJK.search(text), "an English answer must not contain Chinese"
    assert SlotSet("order_id", None) in events and SlotSet("verify_contact", None) in events


def test_signed_in_owner_sees_the_order_in_chinese():
    messages, _ = order_status({"language": "zh", "order_id": "KF20240001"}, {"customer_id": "C1001"})
    text = messages[0]["text"]
    assert "已发货" in text and "顺丰速运" in text and "天蓝色陶瓷马克杯" in text
    assert "shipped" not in text and "SF Express" not in text


def test_metadata_is_also_read_from_the_user_event():
    """kefu puts metadata on the user event; Rasa also copies it into latest_message. Both count."""
    messages, _ = order_status({"language": "en", "order_id": "KF20240001"}, {"customer_id": "C1001"},
                               metadata_in_latest=False)
    assert "SF1402837561924" in messages[0]["text"]


def test_customer_proven_in_this_conversation_sees_the_order():
    messages, _ = order_status({"language": "en", "order_id": "KF20240003", "customer_id": "C1003"})
    assert "ZT7731056482019" in messages[0]["text"]


@pytest.mark.parametrize(
    ("metadata", "slots"),
    [({"customer_id": "C1002"}, {}), ({}, {}), ({}, {"customer_id": "C1002"}), ({}, {"verify_contact": SIGNED_IN})],
)
def test_anyone_else_gets_no_detail_of_the_order(metadata, slots):
    messages, _ = order_status({"language": "en", "order_id": "KF20240001", **slots}, metadata)
    text = texts(messages)
    assert "couldn't confirm that order KF20240001 is yours" in text
    for secret in ("SF1402837561924", "Ceramic mug", "2024-11-26", "shipped", "Wang"):
        assert secret not in text


@pytest.mark.parametrize(
    ("order_id", "language", "expected"),
    [
        ("KF20240002", "en", ["being packed", "2024-11-26"]),
        ("KF20240002", "zh", ["备货中", "2024-11-26"]),
        ("KF20240003", "en", ["delivered on 2024-11-22", "ZT7731056482019", "within 7 days"]),
        ("KF20240003", "zh", ["签收", "中通快递", "7 天"]),
        ("KF20240004", "en", ["Singapore", "EE204815736CN"]),
        ("KF20240004", "zh", ["新加坡"]),
        ("KF20240021", "zh", ["App订单", "KF20240021"]),
        ("KF20240021", "en", ["from our app"]),
        ("KF20240011", "en", ["hasn't been paid", "30 minutes"]),
        ("KF20240019", "zh", ["预售", "2024-12-05"]),
        ("KF20240015", "en", ["two parcels", "SF1402841209377", "2024-11-27"]),
        ("KF20240010", "zh", ["已于 2024-11-20 取消"]),
        ("KF20240017", "en", ["refunded on 2024-11-16"]),
        ("KF20240018", "en", ["past the estimated date"]),
        ("KF20240014", "zh", ["RMA-20241121-0002", "正在寄回仓库"]),
    ],
)
def test_each_kind_of_order_is_described(order_id, language, expected):
    order = store.load_orders()[order_id]
    text = describe_order(order, language)
    for fragment in expected:
        assert fragment in text
    assert bool(CJK.search(text.replace(order.get("id"), ""))) == (language == "zh") or language == "zh"


def test_unknown_order_and_missing_store():
    messages, _ = order_status({"language": "zh", "order_id": "KF20239999"}, {"customer_id": "C1001"})
    assert "没有查到订单号为 KF20239999 的订单" in messages[0]["text"]
    # a marketplace's number: not ours, and the shopper hears where we sell rather than "check the number"
    messages, _ = order_status({"language": "en", "order_id": "3658201947"}, {"customer_id": "C1006"})
    assert "isn't one of our order numbers" in messages[0]["text"] and "no Tmall" in messages[0]["text"]


def test_missing_orders_file_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv(store.ORDERS_ENV, str(tmp_path / "nope.json"))
    messages, _ = order_status({"language": "en", "order_id": "KF20240001"}, {"customer_id": "C1001"})
    assert "can't look up orders right now" in messages[0]["text"]


def test_without_an_order_number_it_asks_for_one():
    messages, _ = order_status({"language": "en"})
    assert [m["response"] for m in messages] == ["utter_ask_order_id"]


def test_orders_file_can_be_replaced(monkeypatch, tmp_path):
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps({"orders": [
        {"id": "KF11112222", "customer_id": "X1", "status": "processing", "ordered_at": "2025-01-02",
         "estimated_ship": "2025-01-03", "items": [{"sku": "TP", "name": {"en": "Teapot", "zh": "茶壶"}, "qty": 1}]},
    ]}), encoding="utf-8")
    monkeypatch.setenv(store.ORDERS_ENV, str(orders))
    messages, _ = order_status({"language": "zh", "order_id": "KF11112222"}, {"customer_id": "X1"})
    assert "茶壶" in messages[0]["text"] and "2025-01-03" in messages[0]["text"]  # no as_of: dates as they are


# -- the order form's validation: number, then the phone / e-mail ----------------------------------------------------


@pytest.mark.parametrize("bad", ["abc", "KF2024001", "KF123", "1234567", "KF202400011", "13800138001"])
def test_validation_rejects_a_bad_number(bad):
    messages, events = validate(ValidateOrderStatusForm(), {}, {"order_id": bad})
    assert as_dict(events) == {"order_id": None}
    assert [m.get("response") for m in messages] == ["utter_invalid_order_id"]


def test_validation_rejects_an_order_that_does_not_exist():
    messages, events = validate(ValidateOrderStatusForm(), {}, {"order_id": "KF20239999"})
    assert as_dict(events)["order_id"] is None
    assert "couldn't find an order with the number KF20239999" in texts(messages)


def test_signed_in_owner_is_not_asked_for_the_phone_number():
    messages, events = validate(ValidateOrderStatusForm(), {}, {"order_id": "kf 2024 0001"},
                                metadata={"customer_id": "C1001"})
    assert as_dict(events) == {"order_id": "KF20240001", "verify_contact": SIGNED_IN}
    assert messages == []


def test_unknown_shopper_is_asked_for_the_phone_number_and_told_nothing():
    messages, events = validate(ValidateOrderStatusForm(), {}, {"order_id": "KF20240001"})
    assert as_dict(events) == {"order_id": "KF20240001", "verify_contact": None}
    assert messages == []  # the form asks utter_ask_verify_contact; nothing about the order yet


def test_signed_in_shopper_asking_about_someone_elses_order_is_told_it_is_not_on_their_account():
    messages, events = validate(ValidateOrderStatusForm(), {}, {"order_id": "KF20240001"},
                                metadata={"customer_id": "C1002"})
    assert as_dict(events)["verify_contact"] is None
    assert "isn't on the account you're signed in with" in texts(messages)
    assert "SF1402837561924" not in texts(messages)


@pytest.mark.parametrize("contact", ["13800138001", "+86 138 0013 8001", "my number is 138-0013-8001",
                                     "Wang.Li@Example.com", "邮箱 wang.li@example.com"])
def test_the_right_phone_or_email_proves_the_shopper(contact):
    messages, events = validate(ValidateOrderStatusForm(), {"order_id": "KF20240001"}, {"verify_contact": contact})
    slots = as_dict(events)
    assert slots["customer_id"] == "C1001" and slots["customer_tier"] == "gold" and slots["verify_attempts"] == 0
    assert slots["verify_contact"] not in (None, FAILED) and "8001" not in slots["verify_contact"][3:-4]
    assert messages == []


def test_a_wrong_contact_is_counted_and_the_third_ends_the_checking():
    form = ValidateOrderStatusForm()
    messages, events = validate(form, {"order_id": "KF20240001"}, {"verify_contact": "13900139002"})
    assert as_dict(events) == {"verify_contact": None, "verify_attempts": 1}
    assert "doesn't match" in texts(messages) and "2 more tries" in texts(messages)
    messages, events = validate(form, {"order_id": "KF20240001", "verify_attempts": 2},
                                {"verify_contact": "emily.chen@example.com"})  # another customer's e-mail
    assert as_dict(events) == {"verify_contact": FAILED, "verify_attempts": 3}
    assert "can't keep checking" in texts(messages)
    assert "customer_id" not in as_dict(events)
    # and the next order number in this conversation is not checked at all any more
    messages, events = validate(form, {"verify_attempts": 3}, {"order_id": "KF20240003"})
    assert as_dict(events)["verify_contact"] == FAILED


@pytest.mark.parametrize("typed", ["account", "n/a", "failed", "I don't remember", "KF20240001"])
def test_typing_a_magic_word_proves_nothing(typed):
    messages, events = validate(ValidateOrderStatusForm(), {"order_id": "KF20240001"}, {"verify_contact": typed})
    assert as_dict(events) == {"verify_contact": None}
    assert "doesn't look like a phone number" in texts(messages)


def test_contacts_are_parsed_and_masked():
    assert parse_contact("Emily.Chen@Example.com ") == ("email", "emily.chen@example.com")
    assert parse_contact("0086 139 0013 9002") == ("phone", "13900139002")
    assert parse_contact("+65 9123 4567") == ("phone", "6591234567")
    assert parse_contact("no idea") is None
    assert mask(("phone", "13900139002")) == "139****9002"
    assert mask(("email", "emily.chen@example.com")) == "e***@example.com"


# -- returns -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [("faulty", "faulty"), ("it stopped working", "faulty"), ("质量有问题", "faulty"), ("充不进电", "faulty"),
     ("arrived cracked", "damaged"), ("杯子碎了", "damaged"), ("you sent the wrong colour", "wrong_item"),
     ("发错货了", "wrong_item"), ("too small", "doesnt_fit"), ("尺码太小了戴不上", "doesnt_fit"),
     ("I just don't like it", "changed_mind"), ("不想要了", "changed_mind"), ("不喜欢这个颜色", "changed_mind"),
     ("hmm", None), ("發錯貨了", "wrong_item"), ("杯子碎咗", "damaged")],  # traditional characters too
)
def test_return_reasons_are_understood(text, reason):
    assert classify_reason(text) == reason


@pytest.mark.parametrize(
    ("text", "condition"),
    [("unused", "unused"), ("never used, still in the box with tags", "unused"), ("yes", "unused"),
     ("没拆过，吊牌都在", "unused"), ("全新的", "unused"), ("是的", "unused"), ("not opened", "unused"),
     ("I wore it once", "used"), ("washed it", "used"), ("no", "used"), ("拆封了", "used"), ("穿过", "used"),
     ("不是", "used"), ("what?", None), ("沒拆過，吊牌都在", "unused"), ("拆封過了", "used")],
)
def test_item_conditions_are_understood(text, condition):
    assert classify_condition(text) == condition


def test_items_are_picked_by_button_name_number_or_all():
    order = store.load_orders()["KF20240003"]
    assert pick_items("GLOVES-KNIT", order) == ["GLOVES-KNIT"]
    assert pick_items("the scarf", order) == ["SCARF-WOOL"]
    assert pick_items("手套那件", order) == ["GLOVES-KNIT"]
    assert pick_items("2", order) == ["GLOVES-KNIT"]
    assert pick_items("the first one", order) == ["SCARF-WOOL"]
    assert pick_items("第二个", order) == ["GLOVES-KNIT"]
    assert pick_items("第二個", order) == pick_items("兩件都退", order)[1:] == ["GLOVES-KNIT"]
    assert pick_items("both of them", order) == ["SCARF-WOOL", "GLOVES-KNIT"]
    assert pick_items("两件都退", order) == ["SCARF-WOOL", "GLOVES-KNIT"]
    assert pick_items("the lamp", order) is None and pick_items("5", order) is None


ITEM = {"sku": "X", "name": {"en": "x", "zh": "x"}, "category": "clothing"}


@pytest.mark.parametrize(
    ("category", "reason", "condition", "days", "eligible", "why"),
    [
        ("clothing", "changed_mind", "unused", 7, True, "ok"),
        ("clothing", "changed_mind", "unused", 8, False, "late"),
        ("clothing", "doesnt_fit", "used", 2, False, "used"),
        ("food", "changed_mind", "used", 1, False, "used"),
        ("food", "changed_mind", "unused", 1, True, "ok"),
        ("underwear", "changed_mind", "unused", 1, False, "excluded"),
        ("personalised", "doesnt_fit", "unused", 1, False, "excluded"),
        ("underwear", "wrong_item", "n/a", 3, True, "ok"),
        ("clothing", "faulty", "used", 15, True, "ok"),
        ("clothing", "damaged", "n/a", 16, False, "late_fault"),
        ("electronics", "faulty", "n/a", 21, False, "warranty"),
        ("electronics", "faulty", "n/a", 400, False, "late_fault"),
    ],
)
def test_return_rules(category, reason, condition, days, eligible, why):
    verdict = judge({**ITEM, "category": category}, reason, condition, days, None)
    assert (verdict.eligible, verdict.why) == (eligible, why)
    assert judge(ITEM, "faulty", None, 1, "RMA-1").why == "open_return"


def start_return(slots: dict[str, Any], metadata: dict[str, Any] | None = None, sender: str = "shopper-1"):
    return run(ActionStartReturn(), make_tracker(slots, metadata=metadata, sender=sender))


def test_an_eligible_return_gets_an_rma_number_and_the_next_steps():
    messages, events = start_return({"language": "en", "order_id": "KF20240003", "customer_id": "C1003",
                                     "return_item": "SCARF-WOOL", "return_reason": "changed_mind",
                                     "item_condition": "unused"})
    text = texts(messages)
    assert re.search(r"RMA-20241125-\d{4}", text) and "Wool scarf" in text
    assert "within 7 days" in text and "postage is yours" in text and "1–3 business days" in text
    assert SlotSet("order_id", None) in events and SlotSet("return_outcome", None) in events
    assert store.returns_of("KF20240003")[0]["items"] == ["SCARF-WOOL"]
    # the same item cannot be returned twice
    messages, _ = start_return({"language": "en", "order_id": "KF20240003", "customer_id": "C1003",
                                "return_item": "SCARF-WOOL", "return_reason": "faulty", "item_condition": "n/a"})
    assert "already has a return in progress" in texts(messages)


def test_a_faulty_item_gets_a_free_pickup_in_chinese():
    messages, _ = start_return({"language": "zh", "order_id": "KF20240009", "return_item": "KETTLE-15",
                                "return_reason": "faulty", "item_condition": NOT_NEEDED},
                               metadata={"customer_id": "C1005"})
    assert "免费预约顺丰上门取件" in texts(messages) and "RMA-" in texts(messages)


def test_a_refused_return_says_why_and_offers_a_review():
    messages, events = start_return({"language": "en", "order_id": "KF20240013", "customer_id": "C1001",
                                     "return_item": "SHIRT-LINEN", "return_reason": "changed_mind",
                                     "item_condition": NOT_NEEDED})
    text = texts(messages)
    assert "more than 7 days ago" in text and "Shall I?" in text and "RMA-" not in text
    assert SlotSet("return_outcome", "ineligible") in events
    context = next(e["value"] for e in events if e.get("name") == "ticket_context" and e["value"])
    assert "KF20240013" in context and "late" in context


def test_mixed_items_start_the_returnable_one_and_refuse_the_other():
    messages, _ = start_return({"language": "zh", "order_id": "KF20240006", "customer_id": "C1001",
                                "return_item": "BRIEFS-3PK,TEE-ORGANIC", "return_reason": "changed_mind",
                                "item_condition": "unused"})
    text = texts(messages)
    assert "有机棉T恤" in text and "RMA-" in text and "内裤" in text and "不支持无理由退货" in text


def test_an_old_electronic_item_is_sent_to_the_warranty_not_a_ticket():
    messages, events = start_return({"language": "en", "order_id": "KF20240005", "customer_id": "C1005",
                                     "return_item": "EARBUDS-W1", "return_reason": "faulty",
                                     "item_condition": NOT_NEEDED})
    assert "1-year warranty" in texts(messages) and SlotSet("return_outcome", "ineligible") not in events


@pytest.mark.parametrize(("order_id", "customer", "fragment"),
                         [("KF20240002", "C1002", "hasn't shipped yet"), ("KF20240001", "C1001", "still on its way"),
                          ("KF20240010", "C1003", "already been cancelled")])
def test_orders_that_are_not_delivered_are_not_returned(order_id, customer, fragment):
    messages, _ = start_return({"language": "en", "order_id": order_id, "customer_id": customer,
                                "return_item": NOT_NEEDED, "return_reason": NOT_NEEDED,
                                "item_condition": NOT_NEEDED})
    assert fragment in texts(messages) and "RMA-" not in texts(messages)


def test_a_return_for_someone_elses_order_starts_nothing():
    messages, _ = start_return({"language": "en", "order_id": "KF20240003", "return_item": "SCARF-WOOL",
                                     "return_reason": "changed_mind", "item_condition": "unused"},
                                    metadata={"customer_id": "C1001"})
    assert "couldn't confirm" in texts(messages) and "RMA-" not in texts(messages)
    assert store.returns_of("KF20240003") == []


def test_return_form_skips_questions_it_does_not_need():
    form = ValidateReturnForm()
    # a single-item order: the item is known once the shopper is proven
    _, events = validate(form, {"order_id": "KF20240013"}, {"verify_contact": "13800138001"}, form="return_form")
    assert as_dict(events)["return_item"] == "SHIRT-LINEN"
    # an order that is not delivered: nothing more to ask
    _, events = validate(form, {}, {"order_id": "KF20240002"}, metadata={"customer_id": "C1002"}, form="return_form")
    assert {as_dict(events)[s] for s in ("return_item", "return_reason", "item_condition")} == {NOT_NEEDED}
    # a fault: the condition does not matter
    _, events = validate(form, {"order_id": "KF20240003", "customer_id": "C1003", "return_item": "SCARF-WOOL"},
                         {"return_reason": "it arrived with a hole, faulty"}, form="return_form")
    assert as_dict(events) == {"return_reason": "faulty", "item_condition": NOT_NEEDED}
    # too late for a no-reason return: no need to ask about the condition either
    _, events = validate(form, {"order_id": "KF20240013", "customer_id": "C1001", "return_item": "SHIRT-LINEN"},
                         {"return_reason": "changed my mind"}, form="return_form")
    assert as_dict(events)["item_condition"] == NOT_NEEDED
    # within the window: the condition is asked
    _, events = validate(form, {"order_id": "KF20240003", "customer_id": "C1003", "return_item": "SCARF-WOOL"},
                         {"return_reason": "too big"}, form="return_form")
    assert as_dict(events) == {"return_reason": "doesnt_fit"}


def test_the_item_list_is_only_shown_to_the_orders_customer():
    messages, _ = run(ActionAskReturnItem(), make_tracker({"language": "en", "order_id": "KF20240003",
                                                           "customer_id": "C1003"}))
    assert "Wool scarf" in messages[0]["text"] and len(messages[0]["buttons"]) == 3
    assert messages[0]["buttons"][0]["payload"] == '/inform{"return_item": "SCARF-WOOL"}'
    messages, _ = run(ActionAskReturnItem(), make_tracker({"language": "en", "order_id": "KF20240003"}))
    assert "Wool scarf" not in texts(messages) and not messages[0].get("buttons")


def test_declining_the_review_clears_the_offer():
    messages, events = run(ActionSkipReview(), make_tracker({"language": "en", "return_outcome": "ineligible"}))
    assert [m["response"] for m in messages] == ["utter_anything_else"]
    assert SlotSet("return_outcome", None) in events


# -- tickets ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ticket"), [("T-20241120-0001", "T-20241120-0001"),
                                              ("ticket t20241120 0001?", "T-20241120-0001"),
                                              ("工单号T-20241122-0002", "T-20241122-0002"), ("T1001", "T1001"),
                                              ("KF20240001", None), ("T-2024", None)])
def test_ticket_numbers_are_normalised(text, ticket):
    assert normalize_ticket_id(text) == ticket


def ticket_status(slots: dict[str, Any], metadata: dict[str, Any] | None = None, sender: str = "shopper-1"):
    return run(ActionTicketStatus(), make_tracker(slots, metadata=metadata, sender=sender))


def test_a_ticket_is_shown_to_its_customer_and_to_its_conversation():
    messages, _ = ticket_status({"language": "en", "ticket_id": "T-20241120-0001"}, {"customer_id": "C1001"})
    assert "being worked on" in messages[0]["text"] and "e-mailed within 3 business days" in messages[0]["text"]
    messages, _ = ticket_status({"language": "zh", "ticket_id": "T-20241118-0003"}, sender="web:demo-liuyang")
    assert "已解决" in messages[0]["text"] and "SF1402839001122" in messages[0]["text"]


def test_a_ticket_is_not_shown_to_anyone_else():
    messages, _ = ticket_status({"language": "en", "ticket_id": "T-20241120-0001"}, {"customer_id": "C1003"})
    assert "couldn't confirm that ticket" in messages[0]["text"] and "invoice" not in messages[0]["text"].lower()


def test_a_guests_ticket_opens_with_the_email_on_it():
    form = ValidateTicketStatusForm()
    _, events = validate(form, {}, {"ticket_id": "t-20241124-0004"}, form="ticket_status_form")
    assert as_dict(events) == {"ticket_id": "T-20241124-0004", "verify_contact": None}
    messages, events = validate(form, {"ticket_id": "T-20241124-0004"}, {"verify_contact": "guest.buyer@example.com"},
                                form="ticket_status_form")
    slots = as_dict(events)
    assert slots["verified_ticket"] == "T-20241124-0004" and "customer_id" not in slots
    messages, _ = ticket_status({"language": "en", "ticket_id": "T-20241124-0004", **slots})
    assert "120 mugs" in messages[0]["text"]


def test_unknown_and_malformed_ticket_numbers():
    form = ValidateTicketStatusForm()
    messages, events = validate(form, {}, {"ticket_id": "T-20240101-0999"}, form="ticket_status_form")
    assert as_dict(events) == {"ticket_id": None} and "couldn't find ticket T-20240101-0999" in texts(messages)
    messages, events = validate(form, {}, {"ticket_id": "my ticket"}, form="ticket_status_form")
    assert [m.get("response") for m in messages] == ["utter_invalid_ticket_id"]


def test_a_review_ticket_is_opened_and_then_visible_in_the_same_conversation():
    messages, events = run(ActionCreateTicket(), make_tracker(
        {"language": "en", "return_outcome": "ineligible", "customer_id": "C1001",
         "ticket_context": "Return review for order KF20240013: Linen shirt (late)"}, sender="web:abc"))
    number = re.search(r"T-20241125-\d{4}", texts(messages)).group(0)
    assert SlotSet("return_outcome", None) in events
    created = store.tickets().get(number)
    assert created["conversation_id"] == "web:abc" and "KF20240013" in created["details"]
    messages, _ = ticket_status({"language": "zh", "ticket_id": number}, sender="web:abc")
    assert "退货复核" in messages[0]["text"] and "待处理" in messages[0]["text"]
    messages, _ = ticket_status({"language": "en", "ticket_id": number}, sender="web:someone-else")
    assert "couldn't confirm" in messages[0]["text"]


def test_after_too_many_wrong_answers_the_lookup_says_nothing_more():
    messages, _ = order_status({"language": "en", "order_id": "KF20240001", "verify_contact": FAILED,
                                "verify_attempts": 3})
    assert messages == []  # the form's validation already said "I can't keep checking"
