"""The reply-by promise: by when a person answers a conversation that waits for one, and how that stands now.

handoff.yml's `reply_within` gives a channel a promise (e-mail: 6 business hours unless the shop says otherwise).
A conversation of such a channel gets its reply-by time once, when it starts waiting for a person (its handoff
request, or the message it left when nobody could take it); the handoff record, the ticket and the wait's handoff
events carry that instant, so the console, the shopper's acknowledgement and the statistics all read the same one.

`business` counts only the shop's opening hours (handoff/hours.py: weekdays, closed dates, the shop's time zone,
daylight saving); `wall` counts every hour. Time left and time overdue are told in the promise's own clock: an
e-mail due at 20:30 that nobody answered by 09:30 next morning (opening 09:00–21:00) is one hour overdue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.dialogue import events as ev
from handoff.hours import BusinessHours
from handoff.settings import HandoffSettings, ReplyPromise

MAX_DAYS = 400  # business time is counted this far ahead at most (a promise nobody can keep has no reply-by)
DUE, DUE_SOON, OVERDUE = "due", "due_soon", "overdue"
# the events of a wait that carry its reply-by time
CARRIERS = (ev.QUEUED, ev.AGENT_ASSIGNED, ev.HANDOFF_UNAVAILABLE, ev.TICKET_CREATED)


def reply_by(start: float, promise: ReplyPromise, hours: BusinessHours) -> float | None:
    """The instant `promise.hours` of the promise's clock after `start`; None if the shop does not open enough
    within MAX_DAYS (closed for a year: no promise to keep)."""
    left = promise.hours * 3600
    if promise.clock == "wall":
        return start + left
    for opens, closes in hours.open_intervals(start, MAX_DAYS):
        if left <= closes - opens:
            return opens + left  # a promise that ends with a period is due at its end, not next morning
        left -= closes - opens
    return None


def counted_seconds(start: float, end: float, clock: str, hours: BusinessHours) -> float:
    """Seconds of the clock from `start` to `end` (negative when `end` is earlier)."""
    if end < start:
        return -counted_seconds(end, start, clock, hours)
    if clock == "wall":
        return end - start
    days = min(MAX_DAYS, int((end - start) // 86400) + 2)
    total = 0.0
    for opens, closes in hours.open_intervals(start, days):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


@dataclass(frozen=True)
class Standing:
    """How a promise stands at one moment: what the console shows and sorts by."""

    reply_by: float
    state: str  # due | due_soon | overdue
    left_s: float  # in the promise's clock; negative: overdue by that much
    clock: str

    @property
    def urgent(self) -> bool:
        return self.state != DUE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def standing(due: float, now: float, promise: ReplyPromise, hours: BusinessHours) -> Standing:
    if now >= due:
        return Standing(due, OVERDUE, round(-counted_seconds(due, now, promise.clock, hours), 1), promise.clock)
    left = counted_seconds(now, due, promise.clock, hours)
    state = DUE_SOON if left <= promise.due_soon_minutes * 60 else DUE
    return Standing(due, state, round(left, 1), promise.clock)


def carried(events: Sequence[ev.Event]) -> float | None:
    """The reply-by time of the conversation's present wait for a person, if one was promised and no person has
    answered since the wait began; None otherwise."""
    for event in reversed(events):
        kind = event.get("event")
        if kind in (ev.AGENT_MESSAGE, ev.HANDOFF_REQUESTED):
            return None
        if kind in CARRIERS and event.get("reply_by") is not None:
            return float(event["reply_by"])
    return None


def waiting_since(events: Sequence[ev.Event], now: float) -> float:
    """When the present wait for a person began: the last handoff request nobody has answered yet, else now."""
    for event in reversed(events):
        kind = event.get("event")
        if kind == ev.AGENT_MESSAGE:
            break
        if kind == ev.HANDOFF_REQUESTED:
            return float(event.get("timestamp") or now)
    return now


def urgency_order(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those due soon or overdue first, the earliest reply-by first; the others keep their order. Items carry
    their standing as `reply` (a Standing's dict, or None)."""
    def key(pair: tuple[int, dict[str, Any]]) -> tuple[int, float]:
        index, item = pair
        reply = item.get("reply")
        return (0, float(reply["reply_by"])) if reply and reply["state"] != DUE else (1, float(index))
    return [item for _, item in sorted(enumerate(items), key=key)]


class ReplyPromises:
    """The shop's promises (handoff.yml `reply_within`), by channel."""

    def __init__(self, settings: HandoffSettings, hours: BusinessHours) -> None:
        self.rules = dict(settings.reply_within)
        self.hours = hours

    def rule(self, channel: str | None) -> ReplyPromise | None:
        return self.rules.get(str(channel or "").lower())

    def reply_by(self, channel: str | None, start: float) -> float | None:
        """The reply-by time of a wait that starts now on `channel`; None if the channel promises nothing."""
        promise = self.rule(channel)
        return None if promise is None else reply_by(start, promise, self.hours)

    def for_wait(self, channel: str | None, events: Sequence[ev.Event], now: float) -> float | None:
        """A message left (a ticket): the present wait's reply-by if it has one, else one from when it began."""
        if self.rule(channel) is None:
            return None
        promised = carried(events)
        return promised if promised is not None else self.reply_by(channel, waiting_since(events, now))

    def standing(self, channel: str | None, due: float | None, now: float) -> dict[str, Any] | None:
        """How the promise stands now (None: nothing promised). A promise the shop has since taken off the channel
        is still shown, counted in wall-clock time."""
        if due is None:
            return None
        promise = self.rule(channel) or ReplyPromise(hours=1, clock="wall")
        return standing(float(due), now, promise, self.hours).as_dict()
