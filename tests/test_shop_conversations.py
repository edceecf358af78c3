"""The demo shop's bot, asked as shoppers ask it over the REST channel: a question or a change of mind inside the
return form does not trap the shopper, and a message that asks two things gets two answers.

These run the real trained starter model (conftest.py) behind the app `kefu run` serves, on SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def shop(starter_model, aiohttp_client, tmp_path):
    from bot.server import ServerSettings, create_app
    from handoff.app_keys import HANDOFF_SETTINGS
    from handoff.settings import HandoffSettings

    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    app = create_app(settings)
    app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"}, tick_s=0.1)
    return await aiohttp_client(app)


async def say(client, sender: str, text: str) -> list[str]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert resp.status == 200
    return [m.get("text") or "" for m in await resp.json()]


async def events(client, sender: str) -> list[dict]:
    return (await (await client.get(f"/conversations/{sender}/tracker")).json())["events"]


def answered_entries(evs: list[dict]) -> list[str]:
    actions = [str((e.get("metadata") or {}).get("utter_action", "")) for e in evs if e.get("event") == "bot"]
    return [a.split("/", 1)[1] for a in actions if a.startswith("utter_faq/")]


def active_loop(evs: list[dict]) -> str | None:
    loops = [e.get("name") for e in evs if e.get("event") == "active_loop"]
    return loops[-1] if loops else None


@pytest.mark.parametrize(("start", "question", "entry", "order_prompt"), [
    ("I want to return something", "how long does a refund take?", "refund_time", "order number"),
    ("我要退货", "退款多久到账", "refund_time", "订单号"),
])
async def test_a_question_inside_the_return_form_is_answered_and_the_form_asks_again(
        shop, start, question, entry, order_prompt):
    first = await say(shop, "r1", start)
    assert any(order_prompt in text for text in first), first
    replies = await say(shop, "r1", question)
    evs = await events(shop, "r1")
    assert answered_entries(evs) == [entry]
    assert order_prompt in replies[-1], "the form asks for the order number again"
    assert active_loop(evs) == "return_form"
    follow = await say(shop, "r1", "KF20240003")
    assert not any(order_prompt in text for text in follow), "the order number was taken"


@pytest.mark.parametrize(("start", "again"), [("I want to return something", "can I return this"),
                                                  ("我要退货", "这个能退吗")])
async def test_asking_to_return_again_inside_the_return_form_gets_an_answer_not_silence(shop, start, again):
    await say(shop, "r4", start)
    replies = await say(shop, "r4", again)
    evs = await events(shop, "r4")
    assert any(text.strip() for text in replies), "the shopper gets an answer"
    last_turn = evs[max(i for i, e in enumerate(evs) if e.get("event") == "user"):]
    assert sum(e.get("event") == "action_execution_rejected" for e in last_turn) <= 1, "the form is not re-run"
    follow = await say(shop, "r4", "KF20240003")
    assert follow, "the conversation goes on"


@pytest.mark.parametrize(("start", "cancel"), [("I want to return something", "cancel"), ("我要退货", "取消")])
async def test_cancel_inside_the_return_form_leaves_it(shop, start, cancel):
    await say(shop, "r2", start)
    replies = await say(shop, "r2", cancel)
    evs = await events(shop, "r2")
    assert active_loop(evs) is None, "the form was left"
    assert replies and not any("KF" in text for text in replies), "it no longer asks for an order number"


@pytest.mark.parametrize(("start", "ask"), [("I want to return something", "I want to talk to a person"),
                                                ("我要退货", "转人工")])
async def test_a_request_for_a_person_inside_the_return_form_hands_over(shop, start, ask):
    await say(shop, "r3", start)
    await say(shop, "r3", ask)
    evs = await events(shop, "r3")
    assert [e["reason"] for e in evs if e.get("event") == "handoff_requested"] == ["explicit_request"]
    assert active_loop(evs) is None


@pytest.mark.parametrize(("text", "entries"), [
    ("几天到，运费多少", {"shipping_time", "shipping_cost"}),
    ("how long does delivery take and how much is shipping", {"shipping_time", "shipping_cost"}),
])
async def test_a_message_that_asks_two_things_gets_both_answers(shop, text, entries):
    replies = await say(shop, "m1", text)
    assert set(answered_entries(await events(shop, "m1"))) == entries
    assert len(replies) >= 2


async def test_a_shopper_who_writes_traditional_characters_is_answered_in_them(shop):
    """Shoppers in Hong Kong, Macau and Taiwan write 運費; the shop's answers are in simplified characters."""
    from bot.language import mainland_chinese, traditional

    replies = await say(shop, "t1", "請問運費多少錢")
    assert answered_entries(await events(shop, "t1")) == ["shipping_cost"]
    assert replies[0] == traditional(replies[0]) and "運費" in replies[0]
    assert mainland_chinese(replies[0]) == ("中国大陆订单实付满 99 元（含 99 元）包邮（偏远地区也包邮），"
                                      "不满 99 元收取 8 元运费（每单）。")
    await say(shop, "t1", "OK")  # tells nothing about the script
    replies = await say(shop, "t1", "退款多久到賬")
    assert answered_entries(await events(shop, "t1"))[-1] == "refund_time"
    assert replies and all(text == traditional(text) for text in replies), "still in traditional characters"
    replies = await say(shop, "t1", "运费多少")  # the newest message that tells decides
    assert "运费" in replies[0]


async def test_a_suggestion_picked_in_a_traditional_bubble_is_answered_in_traditional_characters(shop):
    """The bubble set to zh-Hant offers its suggestions in traditional characters; picking one, before typing
    anything, gets the answer in them too (the payload names the script)."""
    from bot.language import writes_traditional

    replies = await say(shop, "t2", '/faq{"faq_id": "shipping_cost", "language": "zh", "script": "traditional"}')
    assert answered_entries(await events(shop, "t2")) == ["shipping_cost"]
    assert writes_traditional(replies[:1]) and "運費" in replies[0]
    replies = await say(shop, "t3", '/faq{"faq_id": "shipping_cost", "language": "zh"}')
    assert not writes_traditional(replies[:1]) and "运费" in replies[0]
