"""The console's Knowledge page in a real headless Chromium: an editor changes the shipping answer in Chinese and
publishes; a shopper's next question gets the new answer within 5 s, with no restart; rolling back restores the
old one. A plain agent sees the same page read-only.

On Redis there are two workers sharing one Redis: the editor's browser works on worker B, the shopper talks to
worker A's REST webhook, so the new version has to reach A by itself. On SQLite one worker does both.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Expect, Page, async_playwright

from bot.knowledge import KNOWLEDGE
from handoff.app_keys import HANDOFF
from tests.test_knowledge import (
    DOG_REPLY,
    SHIP_ZH,
    answered_within,
    logged_in,
    say,
    unanswered_then_answered_by_a_person,
)

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
PASSWORD = "password-1"
STEP_MS = 30_000
NAVIGATION_MS = 60_000
REACH_S = 5.0
NEW_ZH = "好消息：所有订单现在 12 小时内从杭州发出，大陆 1–3 天送达。"
expect = Expect()
expect.set_options(timeout=STEP_MS)


@asynccontextmanager
async def console_as(base: str, username: str):
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, timeout=NAVIGATION_MS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page.set_default_timeout(STEP_MS)
            page.set_default_navigation_timeout(NAVIGATION_MS)
            page.on("dialog", lambda dialog: dialog.accept())  # "roll back to this version?"
            await page.goto(f"{base}/console", wait_until="domcontentloaded")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await expect(page).to_have_url(f"{base}/console", timeout=NAVIGATION_MS)
            await expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))  # the console has started
            await page.click('.tab[data-view="knowledge"]')
            await expect(page.locator("#knowledge-page")).to_be_visible()
            yield page
        finally:
            await browser.close()


async def open_shipping(page: Page) -> None:
    await page.fill("#kn-search", "发货")
    row = page.locator('#kn-rows tr[data-id="shipping_time"]')
    await row.click()
    await expect(page.locator("#kn-editor")).to_be_visible()


async def test_an_editor_changes_an_answer_live_and_rolls_it_back(handoff_backend, kefu_app):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    two_workers = handoff_backend["name"] == "redis"
    shop = await kefu_app()  # worker A: the shopper
    desk = await kefu_app() if two_workers else shop  # worker B: the editor's console
    base = str(desk.make_url("")).rstrip("/")
    await desk.app[HANDOFF].agents.add("li", PASSWORD, name="小李", role="editor")
    await desk.app[HANDOFF].agents.add("zhang", PASSWORD, name="小张")
    old = await say(shop, "before", SHIP_ZH)
    assert "24 小时内发出" in old

    async with console_as(base, "li") as page:
        await expect(page.locator("#kn-state")).to_have_text("机器人当前按训练模型中的 FAQ（data/faq.yml）回答。")
        await open_shipping(page)
        answer = page.locator('textarea[name="answer_zh"]')
        await expect(answer).to_have_value(re.compile("24 小时内发出"))
        await answer.fill(NEW_ZH)
        await page.fill('input[name="summary"]', "发货提速到 12 小时")
        await page.click("#kn-publish")
        published = time.monotonic()
        await expect(page.locator("#toast")).to_contain_text("已发布版本 1")
        assert await answered_within(shop, SHIP_ZH, NEW_ZH, REACH_S - (time.monotonic() - published)) < REACH_S
        await expect(page.locator("#kn-state")).to_have_text("机器人当前按版本 1 回答。")
        await expect(page.locator('#kn-versions li[data-version="1"]')).to_contain_text("发货提速到 12 小时")
        await expect(page.locator('#kn-versions li[data-version="1"]')).to_contain_text("li")

        await page.locator('#kn-versions li[data-version="0"] button').click()
        rolled = time.monotonic()
        await expect(page.locator("#toast")).to_contain_text("已发布版本 2")
        assert await answered_within(shop, SHIP_ZH, "24 小时内发出", REACH_S - (time.monotonic() - rolled)) < REACH_S
        assert shop.app[KNOWLEDGE].number == 2

    async with console_as(base, "zhang") as page:  # a plain agent reads, cannot publish
        await expect(page.locator("#kn-state")).to_contain_text("编辑和管理员才能发布修改")
        await open_shipping(page)
        await expect(page.locator('textarea[name="answer_zh"]')).to_be_disabled()
        await expect(page.locator("#kn-publish")).to_be_hidden()
        await expect(page.locator("#kn-add")).to_be_hidden()
        await expect(page.locator("#kn-versions button")).to_have_count(0)


async def test_a_group_of_unanswered_questions_becomes_an_entry_from_the_agents_reply(kefu_app):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    worker = await kefu_app()
    base = str(worker.make_url("")).rstrip("/")
    editor = await logged_in(worker, "li", "editor")
    await unanswered_then_answered_by_a_person(worker, editor)

    async with console_as(base, "li") as page:
        group = page.locator('#kn-gaps li[data-group="0"]')
        await expect(group).to_contain_text("被问 3 次")
        await expect(group).to_contain_text(DOG_REPLY)
        await group.locator("button.kn-draft").click()
        await expect(page.locator('textarea[name="answer_en"]')).to_have_value(DOG_REPLY)
        await expect(page.locator('textarea[name="questions_en"]')).to_have_value(re.compile("dog"))
        await page.fill('textarea[name="questions_zh"]', "可以带狗进店吗\n店里让带宠物吗")
        await page.fill('textarea[name="answer_zh"]', "杭州门店欢迎牵绳的狗狗进店。")
        await page.click("#kn-preview-btn")
        loud = page.locator("#kn-preview .loud")
        await expect(loud).to_contain_text("can I bring my dog into your shop")
        await page.click("#kn-publish")
        await expect(page.locator("#toast")).to_contain_text("已发布版本 1")
    assert DOG_REPLY in await say(worker, "dog-next", "may I bring my dog to the store?")
