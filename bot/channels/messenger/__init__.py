"""Facebook Messenger channel: `GET/POST /webhooks/messenger` (docs/channels.md §2, checklist F1–F18).

Settings (`config.py`): `channels.messenger` in endpoints.yml or MESSENGER_VERIFY_TOKEN, MESSENGER_APP_SECRET,
MESSENGER_PAGE_ACCESS_TOKEN, MESSENGER_GRAPH_API_BASE, MESSENGER_GRAPH_API_VERSION, MESSENGER_HUMAN_AGENT (only
once App Review granted it). Without them the channel is not mounted (404).

Modules: config (settings), signature (X-Hub-Signature-256), inbound (batch → events → bot text),
api (Send API, sender actions, error policy), threads (windows, receipts, pause state), outbound (bot
events → messages), channel (`MessengerChannel`: processing after the 200, bus delivery), webhook (HTTP).
"""

from __future__ import annotations

from bot.channels.messenger.channel import MessengerChannel
from bot.channels.messenger.config import MessengerSettings

MESSENGER = MessengerChannel.key  # where the app keeps the channel

__all__ = ["MESSENGER", "MessengerChannel", "MessengerSettings"]
