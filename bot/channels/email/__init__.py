"""E-mail channel: the shop's support mailbox over IMAP (README "E-mail", docs/design.md).

Settings (`config.py`): `channels.email` in endpoints.yml or EMAIL_ADDRESS, EMAIL_IMAP_HOST, EMAIL_IMAP_PASSWORD,
EMAIL_SMTP_HOST, EMAIL_SMTP_PASSWORD and the rest. Without them the channel is not mounted.

Modules: config (settings), parse (raw mail → `ParsedMail`, never raising), html (HTML mail as text), quoting
(the new text without quoted history and signature), automatic (mail no person wrote), threads (thread ↔
conversation), compose (reply mails), outbox (sending, retries, failures), imap (the mailbox reader), listener
(SMTP for forwarding rules), channel (`EmailChannel`).
"""

from __future__ import annotations

from bot.channels.email.channel import EmailChannel
from bot.channels.email.config import EmailSettings

EMAIL = EmailChannel.key  # where the app keeps the channel

__all__ = ["EMAIL", "EmailChannel", "EmailSettings"]
