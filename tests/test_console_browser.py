"""The agent console in a real headless Chromium (Playwright), against the app on a real port.

A shopper asks for a person in Chinese over the REST API and is told their place in line; an agent logs in,
sees why the bot gave up and its best guesses, claims, answers (a candidate, a canned reply), closes; the shopper
gets the answer and the rating request; the statistics page counts it. Also takes docs/console.png.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.server import ServerSettings, create_app
from handoff.settings import HandoffSettings
from handoff.state import HANDOFF, HANDOFF_SETTINGS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def server(starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    app = create_app(settings)
    app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"}, tick_s=0.2)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield app, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_agent_console_end_to_end(server):
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    app, base = server
    service = app[HANDOFF]
    await service.agents.add("li", "password-1", name="小李")
    await service.agents.set_status("li", "away")  # on duty but not auto-assigned: the shopper waits in line

    async with aiohttp.ClientSession(base) as http:
        async def say(sender: str, text: str) -> str:
            async with http.post("/webhooks/rest/webhook", json={"sender": sender, "message": text}) as resp:
                assert resp.status == 200
                return "\n".join(m.get("text") or "" for m in await resp.json())

        async def events(sender: str) -> list[dict]:
            async with http.get(f"/conversations/{sender}/tracker") as resp:
                return (await resp.json())["events"]

        await say("shopper-zh", "我的包裹坏了，能退款吗")
        assert "排在第 1 位" in await say("shopper-zh", "转人工")
        await say("shopper-xss", XSS)
        assert "排在第 2 位" in await say("shopper-xss", "转人工")

        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
            try:
                await page.goto(f"{base}/console")
                assert page.url.endswith("/console/login")
                await page.fill("input[name=username]", "li")
                await page.fill("input[name=password]", "password-1")
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/console")
                item = page.locator('#list li[data-id="shopper-zh"]')
                await item.wait_for()
                assert "The shopper asked for a person" in await item.inner_text()

                await item.click()
                await page.wait_for_selector("#conv:not([hidden])")
                assert await page.inner_text("#reason") == "The shopper asked for a person\nexplicit_request"
                candidates = page.locator("#candidates .cand")
                assert 1 <= await candidates.count() <= 3
                assert "我的包裹坏了" in await page.inner_text("#transcript")

                await page.click("#claim")
                await page.wait_for_selector("#reply:not([disabled])")
                await page.locator("#candidates .insert").first.click()
                inserted = await page.input_value("#reply")
                assert inserted and inserted in await page.inner_text("#candidates")
                await page.fill("#reply", "/ret")
                await page.wait_for_selector("#canned .canned-item")
                await page.keyboard.press("Enter")
                assert "退货" in await page.input_value("#reply")
                await page.fill("#reply", "您好，我是小李。破损的商品可以全额退款，我现在为您办理。")
                await page.click("#send")
                await page.wait_for_selector("#transcript .msg.agent")

                # the shopper writes: it shows up live, without reloading
                assert await say("shopper-zh", "好的，谢谢！订单号 KF20240001") == ""
                await page.wait_for_selector("#transcript .msg.user >> text=订单号 KF20240001")
                await page.fill("#reply", "收到，已为您登记退款。")
                await page.click("#send")
                await page.wait_for_selector("#transcript .msg.agent >> nth=1")
                await page.locator("#details dd", has_text="KF20240001").wait_for()
                await page.locator("#toast").wait_for(state="hidden")
                await page.screenshot(path=str(ROOT / "docs" / "console.png"))

                await page.select_option("#resolution", "resolved")
                await page.click("#close")
                await page.wait_for_selector("#transcript .sys >> text=Closed: Resolved")

                # a shopper's markup is text, never HTML
                assert (await page.inner_text(".tab.active")).startswith("My chats")  # claimed: moved there
                await page.click('.tab[data-view="queue"]')
                await page.click('#list li[data-id="shopper-xss"]')
                await page.wait_for_selector("#transcript .msg.user >> text=onerror")
                assert XSS in await page.inner_text("#transcript")
                assert await page.locator("#transcript img, #transcript script").count() == 0
                assert await page.evaluate("window.__xss") is None

                # the Chinese interface
                await page.click("#lang")
                assert (await page.inner_text('.tab[data-view="queue"]')).startswith("排队中")
                assert "顾客要求转人工" in await page.inner_text("#reason")
                await page.click("#lang")

                # the statistics page counts the conversation
                await page.click('.tab[data-view="stats"]')
                await page.wait_for_selector("#stat-cards .card")
                cards = await page.inner_text("#stat-cards")
                assert "Conversations\n2" in cards and "Satisfaction (CSAT)" in cards
            finally:
                await browser.close()

        # the shopper got the answer and the rating request, and rates
        stored = await events("shopper-zh")
        assert any(e["event"] == "agent_message" and "全额退款" in e["text"] for e in stored)
        rating = [e for e in stored if e["event"] == "bot" and (e.get("data") or {}).get("rating_request")]
        assert rating and json.loads(rating[0]["data"]["buttons"][4]["payload"][5:]) == {"score": 5}
        assert "感谢" in await say("shopper-zh", '/csat{"score": 5}')
        async with http.post("/api/agent/login", json={"username": "li", "password": "password-1"}) as resp:
            token = (await resp.json())["token"]
        async with http.get("/api/agent/stats", headers={"Authorization": f"Bearer {token}"}) as resp:
            stats = await resp.json()
        assert stats["conversations"] == 2 and stats["csat_average"] == 5 and stats["handoffs"] == 2
