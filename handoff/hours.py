"""Business hours in the shop's time zone: is a person on duty now, and when is the next opening.

Shops configure local wall-clock hours ("09:00-21:00" in Asia/Shanghai); zoneinfo turns them into instants, so
daylight-saving shops get the right answer on the days the clocks change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock

from handoff.settings import DAYS, HandoffSettings, Period

LOOKAHEAD_DAYS = 14  # a shop closed for longer than this has no "next opening" to tell


class BusinessHours:
    def __init__(self, settings: HandoffSettings) -> None:
        self.timezone = settings.timezone
        self.zone = settings.zone
        self.week = settings.week
        self.closed_dates = set(settings.closed_dates)

    def _periods(self, day: date) -> list[Period]:
        return [] if day in self.closed_dates else self.week[DAYS[day.weekday()]]

    def _bounds(self, day: date, period: Period) -> tuple[datetime, datetime]:
        start = datetime.combine(day, period[0], self.zone)
        end = datetime.combine(day, period[1], self.zone) if period[1] else \
            datetime.combine(day + timedelta(days=1), clock(0, 0), self.zone)
        return start, end

    def is_open(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, self.zone)
        return any(start <= local < end for start, end in
                   (self._bounds(local.date(), p) for p in self._periods(local.date())))

    def next_open(self, now: float) -> datetime | None:
        """The next start of an opening period strictly after `now`, in shop time; None if closed for two weeks.
        Meant for outside hours (when people are back): inside hours it would be the next shift, which is no
        answer to a shopper while the team is on duty."""
        local = datetime.fromtimestamp(now, self.zone)
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for period in self._periods(day):
                start, _ = self._bounds(day, period)
                if start > local:
                    return start
        return None

    def open_intervals(self, since: float, days: int) -> Iterator[tuple[float, float]]:
        """The opening periods from `since` on (the one in progress cut at `since`), as (start, end) instants,
        for up to `days` days: business time is their length, whatever daylight saving does to the clock."""
        first = datetime.fromtimestamp(since, self.zone).date()
        for offset in range(days + 1):
            day = first + timedelta(days=offset)
            for period in self._periods(day):
                start, end = (moment.timestamp() for moment in self._bounds(day, period))
                if end > since:
                    yield max(start, since), end

    def describe_week(self) -> dict[str, list[str]]:
        """Opening hours per weekday as text, for the console and the docs."""
        return {day: [f"{s:%H:%M}-{e:%H:%M}" if e else f"{s:%H:%M}-24:00" for s, e in periods]
                for day, periods in self.week.items()}
