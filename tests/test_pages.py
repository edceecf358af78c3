"""The pages around the bubble (bot/pages): the demo shop, the help centre (the bot's own FAQ search), typing
suggestions."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from bot.app_keys import AGENT
from bot.language import script_of, writes_traditional
from bot.pages import PAGES
from bot.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def client(aiohttp_client, starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    settings.endpoints.channels = {"widget": {"upload_dir": tmp_path / "uploads"}}
    return await aiohttp_client(create_app(settings))


async def search(client, query: str, lang: str = "en") -> list[dict]:
    resp = await client.get("/api/help/search", params={"q": query, "lang": lang})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["results"]


async def test_chinese_and_english_searches_find_the_same_entry_the_bot_answers_from(client):
    zh, en = await search(client, "运费"), await search(client, "shipping fee")
    assert zh[0]["id"] == en[0]["id"] == "shipping_cost"
    assert "99" in en[0]["answer"] and en[0]["url"] == "/help/shipping_cost"
    in_chinese = await search(client, "shipping fee", lang="zh")
    assert in_chinese[0]["id"] == "shipping_cost" and "包邮" in in_chinese[0]["answer"]
    # the bot, asked the same, answers with that entry
    replies = await (await client.post("/webhooks/rest/webhook", json={"sender": "h1", "message": "运费"})).json()
    assert replies[0]["text"] == in_chinese[0]["answer"]
    page = await (await client.get("/help", params={"q": "运费", "lang": "zh"})).text()
    assert 'href="/help/shipping_cost?lang=zh"' in page and "“运费”的搜索结果" in page
    assert (await client.get("/api/help/search")).status == 400


async def test_help_centre_lists_categories_most_asked_first_and_offers_the_chat(client):
    page = await (await client.get("/help", headers={"Accept-Language": "en-GB,en;q=0.9"})).text()
    for heading in ("Most asked", "Browse by topic", "Shipping &amp; delivery", "Returns &amp; refunds",
                    "Still need help?"):
        assert heading in page
    assert '<script src="http://127.0.0.1:' in page and 'data-kefu-lang="en"' in page
    assert re.search(r"<button[^>]*data-kefu-open", page)
    zh = await (await client.get("/help", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text()
    assert "大家都在问" in zh and "配送与运费" in zh and 'data-kefu-lang="zh"' in zh and '<html lang="zh-CN">' in zh

    def most_asked(html: str) -> list[str]:
        section = html.split('id="popular-h"')[1].split("</ol>")[0]
        return re.findall(r'href="/help/([\w/-]+)\?', section)

    entries = [e.id for e in client.app[AGENT].faq_entries() if "/" not in e.id]
    assert most_asked(page) == entries[:5]  # nothing asked yet: the FAQ file's order
    # shoppers ask the bot (any channel) about one entry twice: it moves to the top
    for i in range(2):
        await client.post("/webhooks/rest/webhook", json={"sender": f"inv{i}", "message": "can I get an invoice?"})
    tracker = await (await client.get("/conversations/inv0/tracker")).json()
    asked = next(e["data"]["faq_id"] for e in tracker["events"] if e["event"] == "bot")
    assert asked != entries[0]
    for _ in range(50):  # counted in the background from the bus
        page = await (await client.get("/help", params={"lang": "en"})).text()
        if most_asked(page)[0] == asked:
            break
        await asyncio.sleep(0.05)
    assert most_asked(page)[0] == asked
    topic = await (await client.get("/help", params={"lang": "en", "category": "shipping"})).text()
    assert "<h1>Shipping &amp; delivery</h1>" in topic and topic.count('class="help-snippet"') == sum(
        1 for e in client.app[AGENT].faq_entries() if e.category == "shipping")


async def test_article_page_has_the_answer_related_questions_and_still_need_help(client):
    page = await (await client.get("/help/return_policy", params={"lang": "en"})).text()
    assert "<h1>" in page and "7 days" in page and "Related questions" in page
    assert 'data-kefu-open data-kefu-message="' in page
    resp = await client.get("/help/no-such-entry", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/help")


async def test_help_pages_escape_what_the_shopper_typed(client):
    page = await (await client.get("/help", params={"q": '"><script>alert(1)</script>'})).text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    resp = await client.get("/help")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_suggestions_come_from_the_faq_in_the_language_typed(client):
    body = await (await client.get("/api/widget/suggest", params={"q": "ship", "lang": "en"})).json()
    ids = [s["id"] for s in body["suggestions"]]
    assert "shipping_cost" in ids and "shipping_time" in ids and len(ids) <= 5
    assert "membership_levels" not in ids  # "ship" starts no word of "Membership levels"
    zh = await (await client.get("/api/widget/suggest", params={"q": "退货", "lang": "en"})).json()
    assert zh["language"] == "zh" and all(re.search(r"[\u4e00-\u9fff]", s["title"]) for s in zh["suggestions"])
    popular = await (await client.get("/api/widget/suggest", params={"q": "", "lang": "zh"})).json()
    assert len(popular["suggestions"]) == 5
    nonsense = await (await client.get("/api/widget/suggest", params={"q": "qzxv"})).json()
    assert nonsense["suggestions"] == []


async def test_suggestions_are_in_the_script_typed_else_in_the_bubbles(client):
    """Typed in traditional characters, or asked by a bubble showing them (zh-Hant), suggestions come in them, and
    picking one says so; typed in simplified characters, they stay simplified whatever the bubble shows."""
    typed = await (await client.get("/api/widget/suggest", params={"q": "退貨", "lang": "zh"})).json()
    popular = await (await client.get("/api/widget/suggest", params={"q": "", "lang": "zh-Hant"})).json()
    for body in (typed, popular):
        assert body["language"] == "zh" and body["suggestions"]
        assert all(writes_traditional([s["title"]]) for s in body["suggestions"] if script_of(s["title"]))
        assert any(script_of(s["title"]) for s in body["suggestions"])
        assert all('"script": "traditional"' in s["payload"] for s in body["suggestions"])
    simplified = await (await client.get("/api/widget/suggest", params={"q": "退货", "lang": "zh-Hant"})).json()
    assert not any(writes_traditional([s["title"]]) or "script" in s["payload"] for s in simplified["suggestions"])


async def test_demo_shop_embeds_the_bubble_with_one_script_tag(client):
    resp = await client.get("/")
    page = await resp.text()
    tag = f'<script src="http://127.0.0.1:{client.port}/widget.js" data-kefu-lang="auto"></script>'
    assert page.count("widget.js") == 1 and tag in page
    assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
    js = await client.get("/widget.js")
    assert js.status == 200 and "javascript" in js.headers["Content-Type"]
    source = await js.text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "eval(" not in source
    for hook in ("kefu-launcher", "kefu-panel", "kefu-input", "kefu-send"):
        assert f'"{hook}"' in source
    css = await client.get("/widget.css")
    assert css.status == 200 and "--kefu-accent" in await css.text()
    assert (await client.get("/demo/shop.css")).status == 200
    assert (await client.get("/demo/../../server.py")).status == 404
    evil_host = await (await client.get("/", headers={"Host": 'x"><script>alert(1)</script>'})).text()
    assert "<script>alert(1)" not in evil_host


@pytest.mark.parametrize("path", ["/", "/help"])
async def test_pages_point_at_this_server_whatever_the_host_header_says(client, path):
    resp = await client.get(path, headers={"Host": "evil.example:666"})
    page, csp = await resp.text(), resp.headers["Content-Security-Policy"]
    assert f'<script src="http://127.0.0.1:{client.port}/widget.js"' in page
    assert "evil.example" not in page and "evil.example" not in csp
    assert f"connect-src 'self' ws://127.0.0.1:{client.port} wss://127.0.0.1:{client.port};" in csp


async def test_pages_use_the_configured_public_url(aiohttp_client, starter_model, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_PUBLIC_URL", "https://shop.example/")
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))
    for path in ("/", "/help"):
        resp = await client.get(path, headers={"Host": "evil.example"})
        assert '<script src="https://shop.example/widget.js"' in await resp.text()
        assert "wss://shop.example;" in resp.headers["Content-Security-Policy"]
    monkeypatch.setenv("KEFU_PUBLIC_URL", "shop.example")
    with pytest.raises(ValueError, match="KEFU_PUBLIC_URL"):
        ServerSettings.for_project(ROOT)


async def test_help_centre_and_suggestions_show_display_titles_not_training_phrasings(client):
    """"how do i cancel my order" is how shoppers type; the page and the bubble show "Cancelling an order"."""
    entries = {e.id: e for e in client.app[AGENT].faq_entries()}
    cancel = entries["cancel_order"]
    assert cancel.title("en") == "Cancelling an order" and cancel.title("zh") == "取消订单"
    topic = await (await client.get("/help", params={"lang": "en", "category": "orders"})).text()
    assert ">Cancelling an order</a>" in topic and "how do i cancel my order" not in topic
    article = await (await client.get("/help/cancel_order", params={"lang": "zh"})).text()
    assert "<h1>取消订单</h1>" in article
    body = await (await client.get("/api/widget/suggest", params={"q": "cancel my order", "lang": "en"})).json()
    picked = next(s for s in body["suggestions"] if s["id"] == "cancel_order")
    assert picked["title"] == "Cancelling an order"
    # what the bubble sends for it, as a conversation's first message, gets exactly that entry, in English
    replies = await (await client.post("/webhooks/rest/webhook",
                                       json={"sender": "t1", "message": picked["payload"]})).json()
    assert replies[0]["text"] == cancel.answer("en")
    results = await search(client, "member rank")
    assert all(r["title"] == entries[r["id"]].title("en") for r in results) and "member rank" not in [
        r["title"] for r in results]


async def test_the_demo_shop_sells_what_its_demo_orders_hold(client):
    """One demo shop: the shelves on `/` are the lifestyle store the orders (data/shop/) and the FAQ describe, each
    product an item the demo orders hold, at the same price."""
    import json

    shelves = json.loads((ROOT / "bot/static/demo/products.json").read_text(encoding="utf-8"))["sections"]
    ordered = {item["name"]["en"]: item["price"] for order in
               json.loads((ROOT / "data/shop/orders.json").read_text(encoding="utf-8"))["orders"]
               for item in order["items"]}
    for product in (p for shelf in shelves for p in shelf["products"]):
        name = product["name"]["en"]
        prices = [price for item, price in ordered.items() if item.startswith(name)]
        assert prices and product["price"] == f"¥{prices[0]}", name
    assert {s["id"] for s in shelves} == {"homeware", "clothing", "tea", "electronics"}
    page = await (await client.get("/")).text()
    assert "Wool scarf, charcoal" in page and "Wireless earbuds" in page and "Tea Shop" not in page


async def test_most_asked_is_this_weeks(client):
    """The help centre's "most asked" follows what shoppers asked in the last 7 days, not all time."""
    popularity = client.app[PAGES].popularity
    now = time.time()
    await popularity.add("gift_cards", 50, now=now - 8 * 86400)  # popular once, not this week
    await popularity.add("gift_cards", 1, now=now - 2 * 86400)
    await popularity.add("invoice", 3, now=now)
    assert await popularity.counts(now=now) == {"gift_cards": 1, "invoice": 3}
    assert await popularity.counts(now=now - 8 * 86400) == {}  # the old day was deleted when today began
    page = await (await client.get("/help", params={"lang": "en"})).text()
    section = page.split('id="popular-h"')[1].split("</ol>")[0]
    assert re.findall(r'href="/help/([\w/-]+)\?', section)[:2] == ["invoice", "gift_cards"]


async def test_an_answer_counts_at_once_and_once_for_every_worker(client):
    """The worker that answers counts the answer in its own view at once; once it has added its counts up,
    another worker on the same store sees it too (within its 30 s cache), once."""
    from bot.pages.popularity import FaqPopularity

    popularity = client.app[PAGES].popularity
    before = (await popularity.counts()).get("shipping_cost", 0)
    reply = await client.post("/webhooks/rest/webhook", json={"sender": "pop", "message": "how much is shipping"})
    assert "99" in (await reply.json())[0]["text"]
    assert (await popularity.counts()).get("shipping_cost", 0) == before + 1
    assert (await FaqPopularity(popularity.stores).counts()).get("shipping_cost", 0) == before  # another worker
    await popularity.flush()
    assert (await FaqPopularity(popularity.stores).counts()).get("shipping_cost", 0) == before + 1
    assert (await popularity.counts()).get("shipping_cost", 0) == before + 1  # not twice, now it is shared
