"""Who should serve whom: priority class, group and language of a waiting shopper against the agents on duty.

Pure functions over snapshots, so the rules are easy to test and the same on every worker; the queue applies a
plan with compare-and-set, so a plan made from a stale snapshot can only fail, never double-assign.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from handoff.records import HandoffRecord
from handoff.settings import HandoffSettings


@dataclass
class OnDuty:
    """An agent as routing sees it right now."""

    username: str
    name: str
    status: str  # effective: online | away | offline
    languages: list[str]
    groups: list[str]
    capacity: int
    load: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.load, 0)


def priority_of(settings: HandoffSettings, reason: str, tier: Any, slots: dict[str, Any]) -> tuple[str, int]:
    """The first priority class the shopper belongs to (the last class catches everyone)."""
    classes = settings.priorities
    for rank, klass in enumerate(classes):
        if tier is not None and str(tier).lower() in {t.lower() for t in klass.tiers}:
            return klass.name, rank
        if any(slots.get(name) not in (None, False, "", 0) for name in klass.slots):
            return klass.name, rank
        if reason in klass.reasons:
            return klass.name, rank
    return classes[-1].name, len(classes) - 1


def group_of(settings: HandoffSettings, reason: str, candidates: list[dict[str, Any]],
             categories: dict[str, str]) -> str | None:
    """The skill group the escalation context points to: the bot's top candidate (its FAQ category or intent),
    else the reason. categories maps FAQ ids to their category (from the FAQ hits the bot saw)."""
    top = candidates[0] if candidates else {}
    category = categories.get(str(top.get("id"))) if top.get("kind") == "faq" else None
    intent = top.get("id") if top.get("kind") == "intent" else None
    for name, group in settings.groups.items():
        if (category and category in group.categories) or (intent and intent in group.intents):
            return name
    for name, group in settings.groups.items():
        if reason in group.reasons:
            return name
    return None


def can_take(agent: OnDuty, record: HandoffRecord, now: float, overflow_after_s: float) -> bool:
    """Speaks the shopper's language, and is in the conversation's group (or takes any group). After
    overflow_after_s of waiting, any agent who speaks the language may help. An agent who just transferred the
    conversation away does not get it back."""
    if agent.languages and record.language not in agent.languages:
        return False
    if record.transferred_from and record.transferred_from[-1] == agent.username:
        return False  # don't bounce a transfer straight back
    if record.group is None or not agent.groups or record.group in agent.groups:
        return True
    return now - record.queued_at >= overflow_after_s


def plan(waiting: Iterable[HandoffRecord], agents: Iterable[OnDuty], now: float,
         overflow_after_s: float) -> list[tuple[HandoffRecord, OnDuty]]:
    """Assignments for the waiting list (in service order) to online agents with free slots: each shopper goes
    to the least-loaded agent who can take them (a generalist before a specialist of another group on a tie).
    A shopper nobody can take does not block those behind."""
    pool = [a for a in agents if a.status == "online" and a.free > 0]
    out = []
    for record in waiting:
        fits = [a for a in pool if a.free > 0 and can_take(a, record, now, overflow_after_s)]
        if not fits:
            continue
        # least loaded; on a tie keep specialists free for their own group
        best = min(fits, key=lambda a, r=record: (a.load / a.capacity, a.load, bool(a.groups) and r.group not in
                                                   a.groups, a.username))
        best.load += 1
        out.append((record, best))
    return out


def on_duty(agents: Iterable[OnDuty]) -> bool:
    """Someone is online or away: a shopper who waits will be answered."""
    return any(a.status in ("online", "away") for a in agents)


def eta_s(position: int, agents: Iterable[OnDuty], handling_s: float) -> int | None:
    """Estimated wait for the shopper at `position`: slots free up at (slots online) / (handling time), so the
    p-th in line waits about p × handling / slots. Rounded up to whole minutes (what the shopper is told).
    None when nobody is online or away: there is no wait to estimate until someone logs in."""
    present = list(agents)
    if not on_duty(present):
        return None
    slots = sum(a.capacity for a in present if a.status == "online")
    if slots == 0:
        slots = sum(1 for a in present if a.status == "away")
    seconds = position * handling_s / slots
    return int(max(1, math.ceil(seconds / 60)) * 60)
