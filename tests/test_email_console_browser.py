"""An e-mail conversation in the agent console, in a real headless Chromium: the queue marks the channel, the
agent reads the mail's new text with its attachment and can open the whole original, sees the subject, answers
from the composer, and the shopper gets the answer as a threaded reply mail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from handoff.app_keys import HANDOFF
from tests.test_console_browser import CHROMIUM, PASSWORD, console, expect
from tests.test_email_channel import shopper_mail

pytestmark = pytest.mark.browser


async def test_an_email_in_the_console_shows_its_channel_attachment_and_original_and_the_answer_is_mailed(
        email_app, dovecot, smtp_catcher):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    client = await email_app()
    await client.app[HANDOFF].agents.add("li", PASSWORD, name="Li")
    await client.app[HANDOFF].agents.set_status("li", "away")  # on duty, not auto-assigned
    mail = shopper_mail("Bob Smith <bob@example.com>", "Broken charger",
                        "Hello,\n\nI want to talk to a person, the charger in the photo is broken.\n\n"
                        "Thanks,\nBob\n-- \nBob Smith | ACME Ltd | +1 555 0100")
    mail.add_attachment(b"%PDF-1.4\n" + os.urandom(20_000), maintype="application", subtype="pdf",
                        filename="photo.pdf")
    await dovecot.append(mail)
    base = str(client.make_url("")).rstrip("/")

    async with console(base) as (_browser, page):
        item = page.locator("#list li").first
        await expect(item).to_contain_text("email")  # the channel's badge
        await item.click()
        transcript = page.locator("#transcript")
        await expect(transcript).to_contain_text("I want to talk to a person, the charger in the photo is broken.")
        link = transcript.locator(".attachment a")
        await expect(link).to_have_text("📎 photo.pdf")
        assert (await link.get_attribute("href") or "").startswith("/api/widget/files/att_")
        original = transcript.locator("details.original")
        await expect(original.locator("pre")).to_be_hidden()  # the signature only when asked for
        await original.locator("summary").click()
        await expect(original.locator("pre")).to_contain_text("Bob Smith | ACME Ltd")
        await expect(page.locator("#details")).to_contain_text("Broken charger")

        await page.click("#claim")
        await expect(page.locator("#reply")).to_be_enabled()
        await page.fill("#reply", "Hi Bob, a new charger is on its way.")
        await page.click("#send")
        await expect(page.locator("#transcript .msg.agent")).to_contain_text("a new charger is on its way")

    [reply] = await smtp_catcher.wait_for(lambda: smtp_catcher.to("bob@example.com"))
    assert reply["In-Reply-To"] == mail["Message-ID"] and reply.text().startswith("Hi Bob, a new charger")
