"""The reply-by promise (handoff/promise.py) without a server: by when a person answers, counted in the shop's
business hours or on the wall clock — overnight, over a weekend, a holiday, a lunch break, daylight saving and
the shop's own time zone — and how a promise stands (due, due soon, overdue) when the console looks."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.dialogue import events as ev
from bot.formats.yaml_io import DataError
from handoff import promise
from handoff.events import event
from handoff.hours import BusinessHours
from handoff.settings import HandoffSettings, ReplyPromise, load_settings

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SIX_BUSINESS = ReplyPromise(hours=6, clock="business")
SIX_WALL = ReplyPromise(hours=6, clock="wall")


def at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def shop(**settings: object) -> BusinessHours:
    return BusinessHours(HandoffSettings(**settings))


def local(ts: float | None, zone: ZoneInfo = SHANGHAI) -> str:
    assert ts is not None
    return datetime.fromtimestamp(ts, zone).strftime("%a %Y-%m-%d %H:%M")


# -- by when (2026-01-06 is a Tuesday) --------------------------------------------------------------------------

DAILY = shop(timezone="Asia/Shanghai", hours={"daily": "09:00-21:00"})


@pytest.mark.parametrize(("start", "due"), [
    ((2026, 1, 6, 10, 0), "Tue 2026-01-06 16:00"),  # inside hours: six hours later
    ((2026, 1, 6, 18, 0), "Wed 2026-01-07 12:00"),  # three hours tonight, three tomorrow morning
    ((2026, 1, 6, 15, 0), "Tue 2026-01-06 21:00"),  # due as the shop closes, not at tomorrow's opening
    ((2026, 1, 6, 23, 30), "Wed 2026-01-07 15:00"),  # written at night: the clock starts at opening
    ((2026, 1, 6, 3, 0), "Tue 2026-01-06 15:00"),  # written before opening
])
def test_business_hours_count_only_while_the_shop_is_open(start: tuple[int, ...], due: str) -> None:
    assert local(promise.reply_by(at(SHANGHAI, *start), SIX_BUSINESS, DAILY)) == due


def test_a_weekend_and_a_holiday_do_not_count() -> None:
    weekdays = {"timezone": "Asia/Shanghai", "hours": {"mon-fri": "09:00-18:00", "weekend": "closed"}}
    friday_afternoon = at(SHANGHAI, 2026, 1, 9, 16, 0)
    assert local(promise.reply_by(friday_afternoon, SIX_BUSINESS, shop(**weekdays))) == "Mon 2026-01-12 13:00"
    saturday = at(SHANGHAI, 2026, 1, 10, 10, 0)
    assert local(promise.reply_by(saturday, SIX_BUSINESS, shop(**weekdays))) == "Mon 2026-01-12 15:00"
    holiday = shop(**weekdays, closed_dates=["2026-01-12"])  # Monday off
    assert local(promise.reply_by(friday_afternoon, SIX_BUSINESS, holiday)) == "Tue 2026-01-13 13:00"


def test_a_lunch_break_does_not_count() -> None:
    split = shop(timezone="Asia/Shanghai", hours={"daily": ["09:00-12:00", "13:00-18:00"]})
    three = ReplyPromise(hours=3, clock="business")
    assert local(promise.reply_by(at(SHANGHAI, 2026, 1, 6, 10, 0), three, split)) == "Tue 2026-01-06 14:00"


def test_business_hours_over_a_daylight_saving_change_count_real_hours() -> None:
    """New York moves its clocks forward on Sunday 2026-03-08: a Friday 16:00 mail is due Monday 14:00 local
    time, and a shop open around the clock owes 24 real hours over the 23-hour Sunday."""
    weekdays = shop(timezone="America/New_York", hours={"mon-fri": "09:00-17:00", "weekend": "closed"})
    due = promise.reply_by(at(NEW_YORK, 2026, 3, 6, 16, 0), SIX_BUSINESS, weekdays)
    assert due == at(NEW_YORK, 2026, 3, 9, 14, 0)
    always = shop(timezone="America/New_York", hours={"daily": "24h"})
    day = ReplyPromise(hours=24, clock="business")
    saturday_noon = at(NEW_YORK, 2026, 3, 7, 12, 0)
    due = promise.reply_by(saturday_noon, day, always)
    assert due == saturday_noon + 24 * 3600 and local(due, NEW_YORK) == "Sun 2026-03-08 13:00"


def test_the_shops_time_zone_decides_what_is_open() -> None:
    """One mail at 10:00 UTC: 18:00 in Shanghai (three hours left today), 11:00 in Berlin (all six today)."""
    sent = datetime(2026, 1, 6, 10, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    berlin = shop(timezone="Europe/Berlin", hours={"daily": "09:00-21:00"})
    assert local(promise.reply_by(sent, SIX_BUSINESS, DAILY)) == "Wed 2026-01-07 12:00"
    assert local(promise.reply_by(sent, SIX_BUSINESS, berlin), BERLIN) == "Tue 2026-01-06 17:00"


def test_wall_clock_counts_every_hour_and_a_shop_that_never_opens_promises_nothing() -> None:
    friday_night = at(SHANGHAI, 2026, 1, 9, 20, 0)
    assert local(promise.reply_by(friday_night, SIX_WALL, DAILY)) == "Sat 2026-01-10 02:00"
    closed = shop(hours={"daily": "closed"})
    assert promise.reply_by(friday_night, SIX_BUSINESS, closed) is None
    assert promise.reply_by(friday_night, SIX_WALL, closed) == friday_night + 6 * 3600


# -- how it stands -----------------------------------------------------------------------------------------------


def test_due_due_soon_and_overdue_in_the_promises_clock() -> None:
    due = at(SHANGHAI, 2026, 1, 6, 20, 30)
    early = promise.standing(due, at(SHANGHAI, 2026, 1, 6, 15, 0), SIX_BUSINESS, DAILY)
    assert (early.state, early.left_s, early.urgent) == ("due", 5.5 * 3600, False)
    soon = promise.standing(due, at(SHANGHAI, 2026, 1, 6, 19, 50), SIX_BUSINESS, DAILY)
    assert (soon.state, soon.left_s, soon.urgent) == ("due_soon", 40 * 60, True)
    # nobody answered overnight: half an hour last night and half an hour this morning
    late = promise.standing(due, at(SHANGHAI, 2026, 1, 7, 9, 30), SIX_BUSINESS, DAILY)
    assert (late.state, late.left_s) == ("overdue", -3600)
    wall = promise.standing(due, at(SHANGHAI, 2026, 1, 7, 9, 30), SIX_WALL, DAILY)
    assert (wall.state, wall.left_s) == ("overdue", -13 * 3600)
    # at 20:40 the promise is due tomorrow at 09:20: 20 business minutes, so it is due soon tonight
    tomorrow = promise.reply_by(at(SHANGHAI, 2026, 1, 6, 15, 20), SIX_BUSINESS, DAILY)
    assert local(tomorrow) == "Wed 2026-01-07 09:20"
    tonight = promise.standing(tomorrow, at(SHANGHAI, 2026, 1, 6, 20, 40), SIX_BUSINESS, DAILY)
    assert (tonight.state, tonight.left_s) == ("due_soon", 40 * 60)


def test_lists_put_those_due_soon_or_overdue_first_earliest_first() -> None:
    def item(name: str, state: str | None, due: float = 0) -> dict:
        return {"id": name, "reply": {"state": state, "reply_by": due} if state else None}
    items = [item("chat", None), item("mail-later", "due", 900), item("mail-soon", "due_soon", 500),
             item("mail-late", "overdue", 100), item("chat-2", None)]
    assert [i["id"] for i in promise.urgency_order(items)] == [
        "mail-late", "mail-soon", "chat", "mail-later", "chat-2"]


def test_a_message_left_keeps_the_waits_promise_or_starts_one() -> None:
    requested = {**ev.handoff_requested("explicit_request", []), "timestamp": 1000.0}
    queued = event(ev.QUEUED, position=1, reply_by=5000.0)
    promises = promise.ReplyPromises(HandoffSettings(hours={"daily": "24h"}), shop(hours={"daily": "24h"}))
    waiting = [ev.user("a person please", None, "email"), requested, queued,
               event(ev.HANDOFF_CANCELLED, by="shopper", leave_message=True)]
    assert promises.for_wait("email", waiting, now=3000.0) == 5000.0  # the queue's promise, not a new one
    unpromised = [ev.user("a person please"), requested, event(ev.HANDOFF_UNAVAILABLE, reason="closed")]
    assert promises.for_wait("email", unpromised, now=3000.0) == 1000.0 + 6 * 3600  # from the request
    answered = [*waiting, event(ev.AGENT_MESSAGE, text="hello")]
    assert promises.for_wait("email", answered, now=3000.0) == 3000.0 + 6 * 3600  # a new wait, from now
    assert promises.for_wait("widget", waiting, now=3000.0) is None  # chat promises nothing by default


# -- settings ----------------------------------------------------------------------------------------------------


def test_email_promises_six_business_hours_unless_the_shop_says_otherwise(tmp_path: Path) -> None:
    assert HandoffSettings().reply_within == {"email": SIX_BUSINESS}
    assert load_settings(ROOT / "handoff.yml").reply_within == {"email": SIX_BUSINESS}
    path = tmp_path / "handoff.yml"
    path.write_text("reply_within:\n  widget: {hours: 0.5, clock: wall}\n", encoding="utf-8")
    assert set(load_settings(path).reply_within) == {"email", "widget"}  # added to the default
    path.write_text("reply_within:\n  email: off\n", encoding="utf-8")
    assert load_settings(path).reply_within == {}


@pytest.mark.parametrize(("text", "message"), [
    ("reply_within:\n  email: {hours: 0}\n", "greater than 0"),
    ("reply_within:\n  email: {hours: 6, clock: office}\n", "'business' or 'wall'"),
    ("reply_within:\n  email: {hours: 6, within: 2}\n", "Extra inputs"),
    ("reply_within:\n  E-Mail!: {hours: 6}\n", "is not a channel name"),
    ("reply_within: 6\n", "channel → {hours: 6, clock: business}"),
])
def test_bad_promises_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_settings(path)
    assert message in str(error.value) and "handoff.yml:" in str(error.value)
