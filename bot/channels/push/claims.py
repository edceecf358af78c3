"""Who sends a push channel's notices and agent replies: exactly one worker, in seq order (design.md contracts).

Every handoff notice or agent reply is sent by whoever wins `claim_message_id("out:<cid>:<seq>")`:
- notices produced by a shopper's own turn (e.g. "we're closed, leave a message" after "转人工") are claimed by
  the request that ran the turn (`turn_output`) and go out with the bot's answer (a WeChat passive reply needs
  no allowance and no verified account);
- everything else (agent replies, later queue updates, agent joined/ended, the rating request an agent's close
  adds) comes from the event bus (`forwarder.BusForwarder`), which gives the request a head start on notices so
  that which path sends a turn's notice does not depend on scheduling.
"""

from __future__ import annotations

from bot.dialogue import events as ev
from bot.notices import is_notice
from bot.stores import Stores

CLAIM_TTL_S = 7 * 86400.0


def is_forwarded(event: ev.Event) -> bool:
    """What the bus forwarder sends a shopper: agent messages and notices (bot answers go with their turn)."""
    return event.get("event") == ev.AGENT_MESSAGE or is_notice(event)


async def claim(stores: Stores, conversation_id: str, seq: int) -> bool:
    """True for the one caller, on any worker, that is to send event `seq` of the conversation."""
    return await stores.trackers.claim_message_id(f"out:{conversation_id}:{seq}", CLAIM_TTL_S)


async def turn_output(stores: Stores, conversation_id: str, stored: list[ev.Event]) -> list[ev.Event]:
    """What the request that ran a shopper's turn shows: the bot's answers, and the notices among the turn's
    events that it wins (the bus forwarder sends those it loses)."""
    shown = []
    for event in stored:
        if not is_notice(event):
            if event.get("event") == "bot":
                shown.append(event)
        elif isinstance(event.get("seq"), int) and await claim(stores, conversation_id, event["seq"]):
            shown.append(event)
    return shown
