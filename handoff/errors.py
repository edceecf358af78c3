"""Why the human side refused something, in its own words; the web layer alone turns these into HTTP statuses
(handoff/console/web.py), so the services never know they are called over HTTP."""

from __future__ import annotations


class HandoffError(Exception):
    """A refused request; the message says why, in words an agent can act on."""


class Invalid(HandoffError, ValueError):
    """Bad input: an empty text, an unknown status or resolution…"""


class NotFound(HandoffError):
    """No such conversation, agent, group or ticket."""


class Forbidden(HandoffError):
    """The conversation is someone else's."""


class Conflict(HandoffError):
    """The conversation is not in a state that allows it (claimed already, closed, waiting to be claimed…)."""


class Busy(HandoffError):
    """The conversation's lock stayed taken (a long shopper turn): nothing changed; try again."""


class LockedOut(HandoffError):
    """Too many wrong passwords for one username recently: logins wait (guessing is slowed, not stopped)."""
