"""The reply-by promise in the agent console, in a real headless Chromium against the app on a real port.

E-mail conversations (`email:` ids, channel `email`) are made the way the e-mail channel makes them, through
`Agent.handle`; a chat bubble conversation likewise, and a REST chat through its webhook. The promises are short
wall-clock ones so the test sees them come due: e-mail 0.001 h (3.6 s), the chat bubble half an hour, REST none.
The agent sees the overdue e-mail first and the chat due within the hour next, marked in English and Chinese, the
marks gone once a person has replied, the overdue ticket before a newer one, and per channel how many were
answered within the promise — and axe finds nothing serious on any of those pages.

On Redis two workers share the data: the shoppers write to worker A, the agent's browser works on worker B.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.agent import UserMessage
from bot.app_keys import AGENT
from handoff.app_keys import HANDOFF
from tests.accessibility import serious_violations
from tests.test_console_browser import CHROMIUM, PASSWORD, console, events_of, expect, say

pytestmark = pytest.mark.browser

PROMISES = {"email": {"hours": 0.001, "clock": "wall"}, "widget": {"hours": 0.5, "clock": "wall"}}


async def test_the_console_sorts_and_marks_conversations_by_their_reply_by_time(handoff_backend, kefu_app):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    two_workers = handoff_backend["name"] == "redis"
    shop = await kefu_app(auto_assign=False, reply_within=PROMISES)
    desk = await kefu_app(auto_assign=False, reply_within=PROMISES) if two_workers else shop
    base = str(desk.make_url("")).rstrip("/")
    await desk.app[HANDOFF].agents.add("li", PASSWORD, name="小李")
    agent = shop.app[AGENT]

    # in line in this order: a REST chat (no promise), a chat bubble (half an hour), an e-mail (3.6 s)
    assert "排在第 1 位" in await say(shop, "plain", "转人工")
    await agent.handle(UserMessage("web:soon", "转人工", channel="widget"))
    mailed = await agent.handle(UserMessage("email:late", "I want to talk to a person", channel="email"))
    queued = [e for e in mailed if e["event"] == "queued"]
    assert queued and queued[0]["position"] == 3 and queued[0]["reply_by"] > queued[0]["timestamp"]
    # an e-mail whose sender leaves a message while waiting: a ticket that keeps the wait's reply-by time
    await agent.handle(UserMessage("email:ticket", "转人工", channel="email"))
    left = await agent.handle(UserMessage("email:ticket", "留言：包裹一直没到 <b>急</b>", channel="email"))
    ticket = next(e for e in left if e["event"] == "ticket_created")
    waited = next(e for e in await events_of(shop, "email:ticket") if e["event"] == "queued")
    assert ticket["reply_by"] == waited["reply_by"]
    # a newer ticket from a chat with no promise
    await say(shop, "plain-2", "转人工")
    await say(shop, "plain-2", "留言：请回电")

    async with console(base) as (_, page):
        # the overdue e-mail first, the chat due within the hour next, then the rest in the line's order
        items = page.locator("#list li")
        await expect(items.locator(".item-id")).to_have_text(
            [re.compile(r"#3 email:late"), re.compile(r"#2 web:soon"), re.compile(r"#1 plain")])
        late = page.locator('#list li[data-id="email:late"] .promise')
        await expect(late).to_have_text(re.compile(r"^overdue (< 1 min|\d+ min)$"))
        await expect(late).to_have_attribute("data-state", "overdue")
        await expect(late).to_have_attribute("title", re.compile(r"^Reply by "))
        soon = page.locator('#list li[data-id="web:soon"] .promise')
        await expect(soon).to_have_text(re.compile(r"^due in (29|30) min$"))
        await expect(soon).to_have_attribute("data-state", "due_soon")
        assert await page.locator('#list li[data-id="plain"] .promise').count() == 0
        assert await serious_violations(page) == []

        # in Chinese, and back
        await page.click("#lang")
        await expect(late).to_have_text(re.compile(r"^已超时 (不到 1 分钟|\d+ 分钟)$"))
        await expect(soon).to_have_text(re.compile(r"^(29|30) 分钟后到期$"))
        await page.click("#lang")
        await expect(soon).to_have_text(re.compile(r"^due in"))

        # the agent takes the e-mail: the header marks it until the first reply, which ends the mark
        await late.click()
        await expect(page.locator("#conv-title")).to_have_text("email:late")
        await expect(page.locator("#reply-badge")).to_have_text(re.compile(r"^overdue"))
        await page.click("#claim")
        await expect(page.locator("#reply")).to_be_enabled()
        await page.fill("#reply", "Sorry for the wait: here is your answer.")
        await page.click("#send")
        await expect(page.locator("#transcript .msg.agent")).to_have_count(1)
        await expect(page.locator("#reply-badge")).to_have_count(0)
        await page.click('.tab[data-view="open"]')
        await expect(page.locator('#list li[data-id="email:late"]')).to_have_count(1)
        await expect(page.locator('#list li[data-id="email:late"] .promise')).to_have_count(0)
        await expect(page.locator("#list li .item-id").first).to_have_text(re.compile("web:soon"))

        # the chat bubble's shopper is answered in time
        await page.click('#list li[data-id="web:soon"]')
        await expect(page.locator("#conv-title")).to_have_text("web:soon")
        await page.click("#claim")
        await expect(page.locator("#reply")).to_be_enabled()
        await page.fill("#reply", "您好，我来帮您。")
        await page.click("#send")
        await expect(page.locator("#reply-badge")).to_have_count(0)

        # tickets: the overdue e-mail's before the newer chat's, its text shown as text
        await page.click('.tab[data-view="tickets"]')
        rows = page.locator("#ticket-rows tr")
        await expect(rows).to_have_count(2)
        await expect(rows.first).to_contain_text("email:ticket")
        await expect(rows.first.locator(".promise")).to_have_text(re.compile(r"^overdue"))
        await expect(rows.first.locator("td.text")).to_contain_text("包裹一直没到 <b>急</b>")
        assert await rows.nth(1).locator(".promise").count() == 0
        assert await serious_violations(page) == []
        await rows.first.locator("a").click()  # the ticket's conversation, in the conversation views
        await expect(page.locator("#conv-title")).to_have_text("email:ticket")
        await expect(page.locator(".tab.active")).to_contain_text("All open")

        # statistics per channel: e-mail answered late (and a ticket still unanswered), the chat in time
        await page.click('.tab[data-view="stats"]')
        email = page.locator('#stat-cards [data-promise="email"]')
        await expect(email.locator(".label")).to_have_text("Within 0.001 h around the clock · email")
        await expect(email.locator(".value")).to_have_text("0%")
        await expect(email.locator(".sub")).to_have_text("0 of 2 on time")
        widget = page.locator('#stat-cards [data-promise="widget"]')
        await expect(widget.locator(".value")).to_have_text("100%")
        await expect(widget.locator(".sub")).to_have_text("1 of 1 on time")
        row = page.locator('#stat-channels tr[data-channel="email"] td')
        await expect(row).to_have_text(["2", "0", "0%", re.compile(r"\d+s"), re.compile(r"\d+s")])
        await expect(page.locator('#stat-channels tr[data-channel="rest"] td').nth(2)).to_have_text("—")
        await page.click(".stat-help summary")
        await expect(page.locator("#stat-help")).to_contain_text("Answered within the promise")
        assert await serious_violations(page) == []
        await page.click("#lang")
        await expect(email.locator(".sub")).to_have_text("2 个中 0 个按时")
        await expect(page.locator("#stat-help")).to_contain_text("承诺时限内回复率")
        await expect(page.locator("#stats-page")).to_be_visible()  # the language button keeps the page
