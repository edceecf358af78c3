"""handoff.yml: business hours, timeouts, priority classes, skill groups and reply-by promises, validated by
pydantic.

A missing file means the defaults below (open every day 09:00–21:00 China time). Every mistake is reported with
the file and line, like the other project files.
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.formats.yaml_io import DataError, line_of, load_yaml, validate

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Period = tuple[time, time | None]  # end None: until midnight (written "24:00")


def _clock(hours: int, minutes: int, text: str) -> time | None:
    if hours == 24 and minutes == 0:
        return None
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return time(hours, minutes)


def parse_periods(value: Any) -> list[Period]:
    """"09:00-21:00", ["09:00-12:00", "13:00-18:00"], "closed" or "24h" → opening periods of one day."""
    if value in ("closed", None, False, []):
        return []
    if value in ("24h", "all day"):
        return [(time(0, 0), None)]
    items = value if isinstance(value, list) else [value]
    periods: list[Period] = []
    for item in items:
        match = _RANGE.match(str(item))
        if not match:
            raise ValueError(f'{item!r}: write opening hours as "09:00-21:00", "closed" or "24h"')
        start = _clock(int(match[1]), int(match[2]), str(item))
        end = _clock(int(match[3]), int(match[4]), str(item))
        if start is None or (end is not None and end <= start):
            raise ValueError(f"{item!r}: the end must be after the start (split a night shift in two days)")
        periods.append((start, end))
    return sorted(periods)


_DAY_GROUPS = {"daily": DAYS, "everyday": DAYS, "weekdays": DAYS[:5], "weekend": DAYS[5:], "weekends": DAYS[5:]}


def _day(name: str) -> str:
    short = name.strip().lower()[:3]
    if short not in DAYS:
        raise ValueError(f"{name!r} is not a weekday (mon, tue, … sun, mon-fri, daily, weekdays, weekend)")
    return short


def _days(key: str) -> list[str]:
    """"mon", "monday", "mon-fri", "daily", "weekend" → weekday keys."""
    key = key.strip().lower()
    if key in _DAY_GROUPS:
        return list(_DAY_GROUPS[key])
    if "-" in key:
        first, last = (DAYS.index(_day(part)) for part in key.split("-", 1))
        return list(DAYS[first : last + 1]) if first <= last else list(DAYS[first:] + DAYS[: last + 1])
    return [_day(key)]


class PriorityClass(BaseModel):
    """A class of shoppers served before the classes below it; first in, first out inside a class."""

    model_config = ConfigDict(extra="forbid")
    name: str
    tiers: list[str] = Field([], description="customer tiers (conversation meta `tier`) in this class")
    slots: list[str] = Field([], description="a truthy slot of one of these names puts the shopper in it")
    reasons: list[str] = Field([], description="escalation reasons in this class (complaint)")


class Group(BaseModel):
    """A skill group; a conversation goes to it when its escalation context matches."""

    model_config = ConfigDict(extra="forbid")
    categories: list[str] = Field([], description="FAQ categories of the bot's top candidate")
    intents: list[str] = Field([], description="intents of the bot's top candidate")
    reasons: list[str] = Field([], description="escalation reasons")


class ReplyPromise(BaseModel):
    """How soon a person answers a conversation of one channel that waits for one (handoff/promise.py)."""

    model_config = ConfigDict(extra="forbid")
    hours: float = Field(gt=0, le=24 * 365, description="a person's first reply within this many hours")
    clock: Literal["business", "wall"] = Field(
        "business", description="business: only the shop's opening hours count; wall: every hour counts")
    due_soon_minutes: float = Field(60, ge=0, description="the console marks it this long before it is due")


DEFAULT_REPLY_WITHIN = {"email": {"hours": 6, "clock": "business"}}
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class HandoffSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    hours: dict[str, Any] = Field(default_factory=lambda: {"daily": "09:00-21:00"})
    closed_dates: list[date] = []
    auto_assign: bool = Field(True, description="give waiting shoppers to free online agents at once")
    default_capacity: int = Field(3, ge=1, le=50, description="concurrent conversations of a new agent")
    no_answer_timeout_s: float = Field(300, gt=0, description="waiting this long → offer to leave a message")
    overflow_after_s: float = Field(120, ge=0, description="waiting this long → any group may take it")
    presence_ttl_s: float = Field(120, gt=0, description="an agent unseen this long counts as offline")
    session_ttl_s: float = Field(12 * 3600, gt=0, description="console login lifetime")
    default_handling_s: float = Field(300, gt=0, description="handling time assumed before any is measured")
    recent_handling: int = Field(20, ge=1, description="closed conversations the wait estimate averages")
    tick_s: float = Field(2.0, gt=0, description="how often timeouts and presence are checked")
    ask_rating: bool = True
    priorities: list[PriorityClass] = Field(default_factory=lambda: [
        PriorityClass(name="vip", tiers=["vip", "gold", "platinum"], slots=["vip"]),
        PriorityClass(name="complaint", reasons=["complaint"]),
        PriorityClass(name="normal"),
    ])
    groups: dict[str, Group] = Field(default_factory=lambda: {
        "returns": Group(categories=["returns"]),
        "payment": Group(categories=["payment"]),
        "shipping": Group(categories=["shipping"], intents=["order_status"]),
    })
    resolutions: list[str] = ["resolved", "not_resolved", "spam", "duplicate"]
    reply_within: dict[str, ReplyPromise] = Field(
        default_factory=lambda: {k: ReplyPromise(**v) for k, v in DEFAULT_REPLY_WITHIN.items()},
        description="per channel (the conversation's channel: email, widget, wechat…), the reply-by promise")

    @field_validator("reply_within", mode="before")
    @classmethod
    def _over_the_default(cls, value: Any) -> Any:
        """Channels given here are added to the default (e-mail: 6 business hours); `email: off` drops it."""
        if value is None:
            return dict(DEFAULT_REPLY_WITHIN)
        if not isinstance(value, dict):
            raise ValueError("write reply_within as a mapping: channel → {hours: 6, clock: business}, or off")
        merged = {**DEFAULT_REPLY_WITHIN, **value}
        for name, rule in list(merged.items()):
            if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a channel name (email, widget, wechat, messenger, rest…)")
            if rule in (None, False, "off", "none"):
                del merged[name]
        return merged

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, Any]) -> dict[str, Any]:
        cls.week_of(value)
        return value

    @field_validator("priorities")
    @classmethod
    def _some_priority(cls, value: list[PriorityClass]) -> list[PriorityClass]:
        if not value:
            raise ValueError("name at least one priority class (e.g. normal)")
        return value

    @staticmethod
    def week_of(hours: dict[str, Any]) -> dict[str, list[Period]]:
        """Opening periods per weekday; later keys override earlier ones ("daily" then "sun: closed")."""
        week: dict[str, list[Period]] = {day: [] for day in DAYS}
        for key, value in hours.items():
            periods = parse_periods(value)
            for day in _days(str(key)):
                week[day] = periods
        return week

    @property
    def week(self) -> dict[str, list[Period]]:
        return self.week_of(self.hours)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(path: str | Path) -> HandoffSettings:
    """handoff.yml → settings (defaults when the file is missing)."""
    path = Path(path)
    raw = load_yaml(path) if path.exists() else None
    if raw is None:
        return HandoffSettings()
    if not isinstance(raw, dict):
        raise DataError("handoff.yml must be a mapping (timezone:, hours:, priorities:, groups: …)", path,
                        line_of(raw))
    return validate(HandoffSettings, raw, path)
