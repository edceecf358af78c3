"""What the policies see of a long conversation: its recent past, so a turn costs the same at any length.

Policies look at the events since the last session start or restart (`Tracker.applied_events`). A shop chat can
run for thousands of events in one session; replaying all of them every turn made turns slower and slower. The
policies only ever decide on the last few states (memoisation's max_history, a rule's few steps), so they get
the last MAX_ACTIONS actions or so, preceded by what those events cannot show: the slots and the active form as
they were where the window starts, and a `HISTORY_CUT` marker (states.py) that keeps a cut window from looking
like the start of a conversation. Shorter histories are given whole, exactly as before.

`History` is kept up to date by `Tracker.apply`, one event at a time, and remembers a few marks (turn boundaries
with the state there), so cutting never replays the conversation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from bot.dialogue import events as ev
from bot.dialogue.states import HISTORY_CUT, LISTEN, REJECTED, SKIPPED_ACTIONS

MAX_ACTIONS = 64  # far more than any policy looks back (memoisation's max_history is 5 by default)
MARK_EVERY = 16  # actions between two marks: a window holds MAX_ACTIONS to MAX_ACTIONS + MARK_EVERY actions


@dataclass(frozen=True)
class _Mark:
    """A turn boundary (an `action_listen`) and the policies' state just before it."""

    index: int  # position in the tracker's events
    actions: int  # actions counted since the session start before this one
    slots: dict[str, Any]
    loop: str | None
    rejected: bool


class History:
    """The policies' view of a tracker's events (the state as `states.tracker_states` and `loop_status` keep it)."""

    def __init__(self, initial_slots: dict[str, Any]) -> None:
        self._initial = initial_slots
        self._begin = 0  # index of the last session_started / restart (the policies' history starts there)
        self._slots = dict(initial_slots)
        self._loop: str | None = None
        self._rejected = False
        self._actions = 0
        self._unmarked = 0  # actions since the last mark
        self._marks: deque[_Mark] = deque()

    def copy(self) -> History:
        other = History.__new__(History)
        other.__dict__.update(self.__dict__)
        other._slots = dict(self._slots)
        other._marks = deque(self._marks)  # marks are frozen and their slots never change: shared
        return other

    def observe(self, index: int, event: ev.Event) -> None:
        """The tracker appended `event` at `index`."""
        kind = event.get("event")
        if kind in ("session_started", "restart"):
            self._begin, self._actions, self._unmarked = index, 0, 0
            self._slots, self._loop, self._rejected = dict(self._initial), None, False
            self._marks.clear()
        elif kind == "slot":
            self._slots[event["name"]] = event.get("value")
        elif kind == "active_loop":
            self._loop, self._rejected = event.get("name"), False
        elif kind == REJECTED and event.get("name") == self._loop:
            self._rejected = True
        elif kind == "action" and event.get("name") not in SKIPPED_ACTIONS:
            name = event.get("name")
            if name == LISTEN and self._unmarked >= MARK_EVERY:
                self._marks.append(_Mark(index, self._actions, dict(self._slots), self._loop, self._rejected))
                self._unmarked = 0
            self._actions += 1
            self._unmarked += 1
            if name == self._loop:
                self._rejected = False
        # keep one mark that is far enough back, and the ones after it
        while len(self._marks) > 1 and self._actions - self._marks[1].actions >= MAX_ACTIONS:
            self._marks.popleft()

    def window(self, events: list[ev.Event]) -> list[ev.Event]:
        """The events the policies see (a new list: the caller may keep it while the tracker grows)."""
        mark = self._marks[0] if self._marks else None
        if mark is None or self._actions - mark.actions < MAX_ACTIONS:
            return events[self._begin :]
        prefix: list[ev.Event] = [{"event": HISTORY_CUT}]
        prefix += [ev.slot(name, value) for name, value in mark.slots.items() if value != self._initial.get(name)]
        if mark.loop:
            prefix.append(ev.active_loop(mark.loop))
            if mark.rejected:
                prefix.append(ev.action_execution_rejected(mark.loop))
        return prefix + events[mark.index :]
