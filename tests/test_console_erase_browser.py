"""Deleting a shopper's data from the agent console, in a real headless Chromium (Playwright) against the app on a
real port, on SQLite and on Redis (the `kefu_app` fixture): an admin sees "Delete conversation data", is asked a
question naming the conversation, can step back, and on confirming the conversation is gone from the console and
the store; an ordinary agent is never offered the button. Waits follow tests/test_console_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from bot.app_keys import STORES
from handoff.app_keys import HANDOFF
from tests.test_console_browser import ARGS, CHROMIUM, NAVIGATION_MS, PASSWORD, STEP_MS, expect, say

pytestmark = pytest.mark.browser


async def log_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/console", wait_until="domcontentloaded")
    await expect(page).to_have_url(f"{base}/console/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/console", timeout=NAVIGATION_MS)
    await expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))


async def test_an_admin_deletes_a_conversation_after_confirming_and_agents_are_not_offered_it(kefu_app):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    client = await kefu_app()
    base = str(client.make_url("")).rstrip("/")
    directory = client.app[HANDOFF].agents
    await directory.add("boss", PASSWORD, name="店长", role="admin")
    await directory.add("li", PASSWORD, name="小李")
    await directory.set_status("li", "away")  # on duty, not auto-assigned: shoppers wait in line
    trackers = client.app[STORES].trackers

    await say(client, "shopper-gone", "我的包裹坏了")
    assert "排在第 1 位" in await say(client, "shopper-gone", "转人工")
    await say(client, "shopper-stays", "运费多少")
    assert "排在第 2 位" in await say(client, "shopper-stays", "转人工")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, timeout=NAVIGATION_MS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
            page.set_default_timeout(STEP_MS)
            page.set_default_navigation_timeout(NAVIGATION_MS)
            await log_in(page, base, "boss")
            await page.locator('#list li[data-id="shopper-gone"]').click()
            await expect(page.locator("#conv-title")).to_have_text("shopper-gone")

            # asked first, naming the conversation; Cancel deletes nothing
            await page.click("#erase")
            question = page.locator("#erase-menu .confirm")
            await expect(question).to_be_visible()
            await expect(question).to_contain_text("Delete everything kept about shopper-gone")
            await expect(page.locator("#erase-cancel")).to_be_focused()
            await page.click("#erase-cancel")
            await expect(page.locator("#erase-menu")).to_be_hidden()
            assert await trackers.exists("shopper-gone")

            await page.click("#erase")
            await page.click("#erase-confirm")
            await expect(page.locator("#toast")).to_contain_text("Conversation data deleted.")
            await expect(page.locator("#placeholder")).to_be_visible()
            await expect(page.locator("#conv")).to_be_hidden()
            await expect(page.locator('#list li[data-id="shopper-gone"]')).to_have_count(0)
            await expect(page.locator('#list li[data-id="shopper-stays"]')).to_contain_text("#1 shopper-stays")
            assert not await trackers.exists("shopper-gone")
            assert await trackers.exists("shopper-stays")

            # an ordinary agent sees the conversation, but no delete button
            agent_page = await browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
            agent_page.set_default_timeout(STEP_MS)
            await log_in(agent_page, base, "li")
            await agent_page.locator('#list li[data-id="shopper-stays"]').click()
            await expect(agent_page.locator("#conv-title")).to_have_text("shopper-stays")
            await expect(agent_page.locator("#claim")).to_be_visible()
            await expect(agent_page.locator("#erase")).to_have_count(0)
        finally:
            await browser.close()
