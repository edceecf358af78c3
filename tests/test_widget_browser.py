"""The chat bubble end to end in headless Chromium (Debian's `chromium`, driven by Playwright; never downloaded).

The app runs on a real 127.0.0.1 port; the demo shop page embeds the bubble with its one `<script>` tag, under
its real Content-Security-Policy. An agent answers through the agent API (log in, go online, claim, answer,
close), as the console does.

    KEFU_SCREENSHOTS=1 pytest tests/test_widget_browser.py   # also refreshes docs/widget.png
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from bot.app_keys import AGENT, STORES
from bot.channels.widget import protocol
from bot.dialogue import events as ev
from bot.language import script_of
from bot.server import ServerSettings, create_app
from handoff.app_keys import HANDOFF, HANDOFF_SETTINGS
from handoff.settings import HandoffSettings
from tests.accessibility import serious_violations

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TIMEOUT_MS = 10_000
AGENT_NAME = "Li"
XSS = "<img src=x onerror=alert(1)>"


# -- the agent's side: the agent API over HTTP, as the console uses it ------------------------------------------

class ApiAgent:
    """An agent account that logs in, goes online, then claims / types / answers / closes over HTTP."""

    PASSWORD = "tea-time-2026"

    def __init__(self, app: web.Application, closed_dates: list[date] | None = None) -> None:
        self.app = app
        # before start-up: open around the clock (but on `closed_dates`) and no auto-assignment, so the shopper
        # waits in line
        app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"}, auto_assign=False,
                                                closed_dates=closed_dates or [], timezone="Asia/Shanghai")

    async def start(self, base_url: str) -> None:
        await self.app[HANDOFF].agents.add("li", self.PASSWORD, name=AGENT_NAME)
        self.http = aiohttp.ClientSession(base_url)
        login = await self.http.post("/api/agent/login", json={"username": "li", "password": self.PASSWORD})
        assert login.status == 200, await login.text()
        self.http.headers["Authorization"] = f"Bearer {(await login.json())['token']}"
        await self._call("PUT", "/api/agent/status", {"status": "online"})

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        resp = await self.http.request(method, path, json=body or {})
        assert resp.status in (200, 201), f"{method} {path}: {resp.status} {await resp.text()}"

    async def set_status(self, status: str) -> None:
        await self._call("PUT", "/api/agent/status", {"status": status})

    async def claim(self, cid: str) -> None:
        await self._call("POST", f"/api/agent/conversations/{cid}/claim")

    async def typing(self, cid: str, on: bool) -> None:
        await self._call("POST", f"/api/agent/conversations/{cid}/typing", {"on": on})

    async def say(self, cid: str, text: str) -> None:
        await self._call("POST", f"/api/agent/conversations/{cid}/messages", {"text": text})

    async def close(self, cid: str) -> None:
        await self._call("POST", f"/api/agent/conversations/{cid}/close", {"resolution": "resolved"})

    async def stop(self) -> None:
        await self.http.close()


# -- fixtures --------------------------------------------------------------------------------------------------

@dataclass
class Shop:
    app: web.Application
    url: str
    agent: ApiAgent

    def answer(self, entry: str, language: str) -> str:
        return next(e for e in self.app[AGENT].faq_entries() if e.id == entry).answer(language)


@pytest.fixture
async def shop(starter_model, tmp_path, request) -> AsyncIterator[Shop]:
    """The demo shop on a real port; `@pytest.mark.parametrize("shop", [{"closed_days": 2}], indirect=True)`
    closes the team today and tomorrow (shop time)."""
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    settings.endpoints.channels = {"widget": {"upload_dir": tmp_path / "uploads"}}
    app = create_app(settings)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    closed = [today + timedelta(days=n) for n in range(getattr(request, "param", {}).get("closed_days", 0))]
    agent = ApiAgent(app, closed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    await agent.start(url)
    try:
        yield Shop(app, url, agent)
    finally:
        await agent.stop()
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed (Debian package `chromium`): run `make install`", pytrace=False)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def bot_replies(page: Page):
    return page.locator('.kefu-msg[data-role="bot"]:not([data-local]) .kefu-bubble')


async def ask(page: Page, text: str) -> None:
    await page.locator("#kefu-input").fill(text)
    await page.locator("#kefu-input").press("Enter")


async def conversation_id(shop: Shop) -> str:
    widget_conversations = [c for c in await shop.app[STORES].trackers.conversations() if
                            c["conversation_id"].startswith("web:")]
    assert len(widget_conversations) == 1
    return widget_conversations[0]["conversation_id"]


async def stored_events_until(shop: Shop, cid: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict]:
    """The conversation's stored events, once `done(events)` holds (the shopper's turn runs after the click)."""
    for _ in range(TIMEOUT_MS // 50):
        events = await shop.app[STORES].trackers.events(cid)
        if done(events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"not stored in time: {[e['event'] for e in events]}")


# -- the shopper's journey -------------------------------------------------------------------------------------

async def test_a_shopper_asks_reloads_talks_to_a_person_rates_and_cannot_inject_html(shop: Shop, browser: Browser,
                                                                                  tmp_path):
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    await page.goto(shop.url + "/")
    assert await page.locator('script[src$="/widget.js"]').get_attribute("data-kefu-lang") == "auto"
    launcher, panel = page.locator("#kefu-launcher"), page.locator("#kefu-panel")
    await expect(launcher).to_be_visible()
    await expect(panel).to_be_hidden()
    await launcher.click()
    await expect(panel).to_be_visible()
    await expect(page.locator("#kefu-input")).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "true")

    # a shipping question in English, then in Chinese: the FAQ's answers, in each language
    await ask(page, "How much is shipping?")
    await expect(bot_replies(page)).to_have_text([shop.answer("shipping_cost", "en")])
    await ask(page, "运费多少？")
    await expect(bot_replies(page)).to_have_text([shop.answer("shipping_cost", "en"),
                                                  shop.answer("shipping_cost", "zh")])

    # reload: the conversation is still there (token in localStorage, history from the server)
    await page.reload()
    await expect(panel).to_be_visible()  # it was open: it stays open across pages
    await expect(page.locator('.kefu-msg[data-role="user"] .kefu-bubble')).to_have_text(
        ["How much is shipping?", "运费多少？"])
    await expect(bot_replies(page)).to_have_count(2)
    cid = await conversation_id(shop)

    # a person, please: the shopper sees their place in line
    await page.locator(".kefu-human").click()
    waiting = page.locator('.kefu-msg[data-role="system"][data-handoff="queued"]')
    await expect(waiting).to_contain_text(re.compile(r"You are number 1 in line, about \d+ minutes?"))
    await expect(page.locator(".kefu-status")).to_have_text("You are number 1 in line")
    await expect(page.locator(".kefu-human")).to_have_text("Stop waiting")

    # the agent takes it, types, answers
    await shop.agent.claim(cid)
    await expect(page.locator('[data-handoff="assigned"]')).to_have_text(f"{AGENT_NAME} has joined the conversation")
    await shop.agent.typing(cid, True)
    await expect(page.locator(".kefu-typing")).to_contain_text(f"{AGENT_NAME} is typing")
    answer = "Hi, I'm Li. Orders over ¥99 ship free — yours qualifies!"
    await shop.agent.say(cid, answer)
    agent_msg = page.locator('.kefu-msg[data-role="agent"]')
    await expect(agent_msg.locator(".kefu-bubble")).to_have_text(answer)
    await expect(agent_msg.locator(".kefu-author")).to_contain_text(AGENT_NAME)
    await expect(page.locator(".kefu-typing")).to_be_hidden()
    await expect(page.locator(".kefu-status")).to_have_text(f"{AGENT_NAME} · customer service")
    await page.locator(".kefu-log").evaluate("log => log.scrollTop = log.scrollHeight")
    if os.environ.get("KEFU_SCREENSHOTS"):  # opt-in: running the tests leaves the tree clean
        await page.screenshot(path=str(ROOT / "docs" / "widget.png"))

    # minimised, a new agent message shows an unread badge; Esc closes and gives focus back to the launcher
    await page.locator("#kefu-input").press("Escape")
    await expect(panel).to_be_hidden()
    await expect(launcher).to_be_focused()
    await shop.agent.say(cid, "Anything else?")
    await expect(page.locator(".kefu-badge")).to_have_text("1")
    await launcher.click()
    await expect(page.locator(".kefu-badge")).to_be_hidden()

    # the agent closes: "conversation ended", then the bot asks for a rating and the stars show; the star the
    # shopper clicks is the score the handoff service records
    await shop.agent.close(cid)
    await expect(page.locator('[data-handoff="ended"]')).to_have_text("Conversation ended")
    stars = page.locator(".kefu-rating button[data-score]")
    await expect(stars).to_have_count(5)
    await expect(page.locator(".kefu-rating")).to_be_visible()
    asked = [e for e in await shop.app[STORES].trackers.events(cid) if e["event"] == "bot"
             and (e.get("data") or {}).get("rating_request")]
    assert len(asked) == 1
    await expect(bot_replies(page).last).to_have_text(asked[0]["text"])
    await expect(page.locator(".kefu-replies")).to_have_count(0)  # stars instead of the request's 1-5 buttons
    await stars.nth(3).click()
    await expect(page.locator('.kefu-msg[data-role="user"] .kefu-bubble').last).to_have_text("★★★★")
    await expect(page.locator(".kefu-rating")).to_be_hidden()
    events = await stored_events_until(shop, cid, lambda events: any(e["event"] == ev.CSAT for e in events))
    assert [e["score"] for e in events if e["event"] == ev.CSAT] == [4]
    assert any(e["event"] == "user" and e["text"] == '/csat{"score": 4}' for e in events)
    thanks = events[[e["event"] for e in events].index(ev.CSAT) + 1]
    assert thanks["event"] == "bot" and thanks["metadata"]["utter_action"] == "utter_thanks_for_rating"
    await expect(bot_replies(page).last).to_have_text(thanks["text"])

    # a handoff that ends without a rating request (ask_rating: false) shows no stars
    shop.app[HANDOFF].settings.ask_rating = False
    await page.locator(".kefu-human").click()
    await expect(page.locator(".kefu-status")).to_have_text("You are number 1 in line")
    await shop.agent.claim(cid)
    await expect(page.locator('[data-handoff="assigned"]')).to_have_count(2)
    await shop.agent.close(cid)
    await expect(page.locator('[data-handoff="ended"]')).to_have_count(2)
    await expect(page.locator(".kefu-rating")).to_be_hidden()
    assert not any((e.get("data") or {}).get("rating_request")
                   for e in (await shop.app[STORES].trackers.events(cid))[len(events):])

    # HTML typed by a shopper is shown as text, nothing runs
    await ask(page, XSS)
    await expect(page.locator('.kefu-msg[data-role="user"] .kefu-bubble').last).to_have_text(XSS)
    await expect(page.locator('.kefu-msg[data-role="user"]').last).to_have_attribute("data-seq", re.compile(r"\d+"))
    assert await page.locator(".kefu-log img").count() == 0
    assert dialogs == [] and errors == []
    await context.close()


async def shop_page(shop: Shop, browser: Browser, **context: Any) -> Page:
    """The demo shop's home page, in a browser context of its own (`page.context.close()` when done)."""
    page = await (await browser.new_context(**context)).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(shop.url + "/")
    return page


async def open_panel(page: Page, label: str) -> None:
    """Click the chat button, whose label is in the panel's language."""
    launcher = page.locator("#kefu-launcher")
    await expect(launcher).to_have_attribute("aria-label", label)
    await launcher.click()


async def test_phone_sized_chinese_panel_fills_the_screen(shop: Shop, browser: Browser):
    page = await shop_page(shop, browser, viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                           has_touch=True)
    await open_panel(page, "打开在线客服")
    panel = page.locator("#kefu-panel")
    await expect(panel).to_be_visible()
    box = await panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}
    await expect(page.locator("#kefu-input")).to_have_attribute("placeholder", "请输入您的问题…")
    await expect(page.locator(".kefu-human")).to_have_text("转人工")
    await expect(page.locator('.kefu-msg[data-local="greeting"]')).to_have_text("您好！有什么可以帮您？")
    await expect(page.locator(".kefu-chips button").first).to_be_visible()  # popular questions to tap
    await page.locator("#kefu-input").fill("退货")
    await expect(page.locator("#kefu-suggest li").first).to_be_visible()  # suggestions while typing
    await page.locator("#kefu-suggest li").first.click()
    await expect(bot_replies(page)).to_have_count(1)
    await page.context.close()


async def test_a_taiwan_or_hong_kong_browser_gets_the_panel_and_its_answers_in_traditional_characters(
        shop: Shop, browser: Browser):
    page = await shop_page(shop, browser, locale="zh-TW")
    await open_panel(page, "打開在線客服")
    await expect(page.locator("#kefu-root")).to_have_attribute("lang", "zh-TW")
    await expect(page.locator(".kefu-human")).to_have_text("轉人工")
    await expect(page.locator('.kefu-msg[data-local="greeting"]')).to_have_text("您好！有什麼可以幫您？")
    chip = page.locator(".kefu-chips button").first  # a popular question, before anything is typed
    await expect(chip).to_be_visible()
    asked = await chip.text_content()
    await chip.click()
    await expect(bot_replies(page)).to_have_count(1)
    answer = await bot_replies(page).first.text_content()
    assert script_of(asked or "") != "simplified" and script_of(answer or "") == "traditional", (asked, answer)
    await page.context.close()


# -- order: a frame lost on the way, and an agent's close racing the shopper's message ------------------------

class LossyLink:
    """Between the page and the server: drops the first server frame that matches `drop_next` (a frame lost on
    the way, e.g. by a worker whose bus subscription dropped), passes everything else on."""

    def __init__(self) -> None:
        self.drop_next: dict[str, Any] = {}
        self.dropped: list[dict[str, Any]] = []

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if self.drop_next and all(frame.get(k) == v for k, v in self.drop_next.items()):
                self.drop_next = {}
                self.dropped.append(frame)
                return
            ws.send(message)

        server.on_message(to_page)


async def shown(page: Page) -> list[dict[str, Any]]:
    """The rows the shopper sees that stand for stored events, top to bottom."""
    return await page.locator(".kefu-log [data-seq]").evaluate_all(
        "rows => rows.map(r => ({seq: Number(r.dataset.seq), role: r.dataset.role, handoff: r.dataset.handoff || '',"
        " text: r.querySelector('.kefu-bubble').textContent}))")


async def shows_every_message_in_order(shop: Shop, page: Page, cid: str) -> list[dict[str, Any]]:
    """Waits until every message of the conversation is on the page, then checks they stand in seq order."""
    for _ in range(TIMEOUT_MS // 50):
        stored = await shop.app[STORES].trackers.events(cid)
        messages = [f["seq"] for f in protocol.frames(stored) if f["type"] == "message"]
        rows = await shown(page)
        if [r["seq"] for r in rows if r["role"] != "system"] == messages:
            assert [r["seq"] for r in rows] == sorted({r["seq"] for r in rows}), rows
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"the page shows {rows}, the conversation has messages {messages}")


async def test_the_end_notice_shows_before_the_answer_even_if_its_frame_is_lost_or_the_close_races(
        shop: Shop, browser: Browser):
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    link = LossyLink()
    await page.route_web_socket(re.compile(r"/api/widget/ws$"), link.route)
    await page.goto(shop.url + "/")
    await page.locator("#kefu-launcher").click()
    await page.locator(".kefu-human").click()
    await expect(page.locator(".kefu-status")).to_have_text("You are number 1 in line")
    cid = await conversation_id(shop)
    await shop.agent.claim(cid)
    await expect(page.locator('[data-handoff="assigned"]')).to_have_count(1)

    # the end notice's frame is lost on the way: the next frame names it as the one before, so the bubble
    # fetches it, and shows it where it belongs
    link.drop_next = {"type": "handoff", "state": "ended"}
    await shop.agent.close(cid)
    await expect(page.locator(".kefu-rating")).to_be_visible()
    await ask(page, "How much is shipping?")
    await expect(bot_replies(page).last).to_have_text(shop.answer("shipping_cost", "en"))
    assert [f["state"] for f in link.dropped] == ["ended"]
    rows = await shows_every_message_in_order(shop, page, cid)
    ended = next(r for r in rows if r["handoff"] == "ended")
    asked = next(r for r in rows if r["text"] == "How much is shipping?")
    assert ended["text"] == "Conversation ended" and ended["seq"] < asked["seq"]

    # the agent closes while the shopper writes, again and again: what the shopper sees keeps the order
    for round_ in range(3):
        await page.locator(".kefu-human").click()
        await expect(page.locator(".kefu-status")).to_have_text("You are number 1 in line")
        await shop.agent.claim(cid)
        await expect(page.locator('[data-handoff="assigned"]')).to_have_count(round_ + 2)
        await asyncio.gather(shop.agent.close(cid), ask(page, f"thanks, that's all ({round_})"))
        await stored_events_until(shop, cid, lambda events, n=round_: any(
            e["event"] == "user" and e["text"] == f"thanks, that's all ({n})" for e in events))
        await expect(page.locator('[data-handoff="ended"]')).to_have_count(round_ + 2)
        rows = await shows_every_message_in_order(shop, page, cid)
        thanks = next(r for r in rows if r["text"] == f"thanks, that's all ({round_})")
        ended = [r for r in rows if r["handoff"] == "ended"][-1]
        answers = [r for r in rows if r["role"] == "bot" and r["seq"] > thanks["seq"]]
        assert ended["seq"] < thanks["seq"] or not answers or answers[0]["seq"] > ended["seq"]
    await context.close()



# -- suggestions, status texts and accessibility ---------------------------------------------------------------

async def test_arrow_keys_walk_the_suggestions_one_at_a_time_and_enter_asks_the_one_shown(shop: Shop,
                                                                                          browser: Browser):
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(shop.url + "/")
    await page.locator("#kefu-launcher").click()
    box = page.locator("#kefu-input")
    await box.fill("return")
    items = page.locator("#kefu-suggest li")
    await expect(items.nth(3)).to_be_visible()  # at least four to walk through

    async def highlighted() -> list[int]:
        selected = await items.evaluate_all("lis => lis.map(li => li.getAttribute('aria-selected'))")
        return [i for i, v in enumerate(selected) if v == "true"]

    await box.press("ArrowDown")
    assert await highlighted() == [0]  # the first suggestion, not nothing
    for _ in range(3):
        await box.press("ArrowDown")
    assert await highlighted() == [3]
    await box.press("ArrowUp")
    assert await highlighted() == [2]  # one back, not two
    await expect(box).to_have_attribute("aria-activedescendant", "kefu-suggest-2")
    titles = await items.all_text_contents()
    entries = {e.title("en"): e for e in shop.app[AGENT].faq_entries()}
    assert all(t in entries for t in titles)  # display titles, never raw training phrasings
    await box.press("Enter")
    await expect(page.locator('.kefu-msg[data-role="user"] .kefu-bubble')).to_have_text([titles[2]])
    await expect(bot_replies(page)).to_have_text([entries[titles[2]].answer("en")])  # in English, first message
    await context.close()


async def test_nobody_online_the_shopper_leaves_a_message_and_the_header_follows(shop: Shop, browser: Browser):
    await shop.agent.set_status("offline")  # in hours, nobody logged in
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(shop.url + "/")
    await page.locator("#kefu-launcher").click()
    status, box = page.locator(".kefu-status"), page.locator("#kefu-input")
    await expect(status).to_have_text("Our assistant answers right away")
    await page.locator(".kefu-human").click()
    await expect(status).to_have_text("Nobody is online right now — wait or leave a message")
    await expect(page.locator('[data-handoff="queued"]')).to_contain_text("Nobody is online right now")
    await expect(box).to_have_attribute("placeholder", "Type your question…")  # not yet: only once asked
    assert await serious_violations(page, "#kefu-root") == []
    await page.locator(".kefu-replies button", has_text="Leave a message").click()
    await expect(page.locator('[data-handoff="cancelled"]')).to_have_text("You left the line to leave a message")
    await expect(status).to_have_text("Leave us a message")
    await expect(box).to_have_attribute("placeholder", "Leave a message for our team…")
    cid = await conversation_id(shop)
    await stored_events_until(shop, cid, lambda events: any(e["event"] == "user" and e["text"] == "/leave_message"
                                                            for e in events))
    await ask(page, "My parcel KF20240001 has not arrived")
    await expect(page.locator('[data-handoff="ticket"]')).to_contain_text("Message received (ticket")
    await expect(status).to_have_text("Message received — we'll reply here")  # no longer "Leave us a message"
    await expect(box).to_have_attribute("placeholder", "Type your question…")
    await page.reload()  # the header says the same from the conversation's stored state
    await expect(page.locator('[data-handoff="ticket"]')).to_be_visible()
    await expect(status).to_have_text("Message received — we'll reply here")
    await context.close()


@pytest.mark.parametrize("shop", [{"closed_days": 2}], indirect=True)
async def test_a_closed_team_says_when_it_is_back_in_the_shops_time_zone_in_both_languages(shop: Shop,
                                                                                          browser: Browser):
    back = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=2)).date()  # 00:00 shop time, a 24 h team
    for locale, named in (("en-US", "(Asia/Shanghai)"), ("zh-CN", "（北京时间）")):
        context = await browser.new_context(locale=locale, timezone_id="America/New_York")  # not the shop's
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(shop.url + "/")
        await page.locator("#kefu-launcher").click()
        await page.locator(".kefu-human").click()
        notice = page.locator('[data-handoff="unavailable"]')
        await expect(notice).to_contain_text(f"00:00{named}" if locale == "zh-CN" else f"00:00 {named}")
        status = page.locator(".kefu-status")
        if locale == "en-US":
            await expect(status).to_have_text(re.compile(rf"^Our team is back {back:%a} 00:00 \(Asia/Shanghai\)$"))
        else:
            await expect(status).to_have_text(re.compile(r"^人工客服周.\s?00:00（北京时间）恢复服务$"))
        await expect(page.locator(".kefu-replies button")).to_have_text(["Leave a message" if locale == "en-US"
                                                                         else "留言"])
        await context.close()


async def test_the_bubble_and_the_help_centre_pass_an_accessibility_check(shop: Shop, browser: Browser):
    """axe-core's WCAG A/AA rules: no serious or critical violation in the open bubble with messages (bot, user,
    quick replies, the rating stars), nor on the help centre and an article."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(shop.url + "/")
    await page.locator("#kefu-launcher").click()
    await expect(page.locator(".kefu-chips button").first).to_be_visible()
    await ask(page, "How much is shipping?")
    await expect(bot_replies(page)).to_have_count(1)
    await page.locator(".kefu-human").click()
    cid = await conversation_id(shop)
    await expect(page.locator(".kefu-status")).to_have_text("You are number 1 in line")
    await shop.agent.claim(cid)
    await shop.agent.say(cid, "Hi, I'm Li.")
    await shop.agent.close(cid)
    await expect(page.locator(".kefu-rating")).to_be_visible()
    await page.locator("#kefu-input").fill("ship")
    await expect(page.locator("#kefu-suggest li").first).to_be_visible()
    assert await serious_violations(page, "#kefu-root") == []
    for path in ("/help?lang=en", "/help/return_policy?lang=zh", "/"):
        await page.goto(shop.url + path)
        await expect(page.locator("#kefu-launcher")).to_be_visible()
        assert await serious_violations(page) == [], path
    await context.close()
