"""The one shape every channel has (docs/design.md, contracts), after rasa's InputChannel/OutputChannel and
opsdroid's connectors: a folder (or a module) with its settings model at the top and one `Channel` class.

A channel
- owns the conversations whose ids start with its `conversation_prefix` (`<name>:` unless the class says;
  None for REST, whose ids are the caller's): no other channel may address them (`registry.owner_of`);
- has a `name`: its settings (`settings_model`) are `channels.<name>` in endpoints.yml and `<NAME>_<FIELD>`
  environment variables (`settings.py`); a model with required fields means the channel runs only once they
  are set; the app keeps the channel under `key`;
- `mount(app)`s itself: its routes, and its lifecycle, started after the core's (agent, stores) and stopped
  before them. What runs meanwhile is the channel's (`running`): a push channel's bus forwarder, the bubble's
  rooms, or a reader that polls a mailbox and answers later -- a channel need not have routes at all;
- turns its platform's input into a `UserMessage` for `Agent.handle` (`user_message`);
- renders stored events in its platform's shape (`render`): a webhook's reply, socket frames, a message body.

The registry (`registry.py`) lists the channels; `create_app` mounts every configured one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel

from bot.agent import Agent, UserMessage
from bot.app_keys import AGENT, STORES
from bot.dialogue import events as ev
from bot.stores import Stores

log = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)
In = TypeVar("In")
Out = TypeVar("Out")


class Channel(ABC, Generic[S, In, Out]):
    name: ClassVar[str]
    key: ClassVar[web.AppKey[Any]]  # where the app keeps it (made from `name` unless the class says)
    settings_model: ClassVar[type[BaseModel]]
    default_language: ClassVar[str | None] = None  # a conversation's language before its first turn (None: the bot's)
    conversation_prefix: ClassVar[str | None] = None  # its conversation ids start with this (made from `name`)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "key" not in cls.__dict__:
            cls.key = web.AppKey(f"{cls.name}_channel", cls)
        if "name" in cls.__dict__ and "conversation_prefix" not in cls.__dict__:
            cls.conversation_prefix = f"{cls.name}:"

    def __init__(self, settings: S, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # tests move time; everything reads it through now()
        self.agent: Agent | None = None
        self.stores: Stores | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # settings may hold secrets: never shown

    def now(self) -> float:
        return self.clock()

    # -- on the app ------------------------------------------------------------------------------------------

    def mount(self, app: web.Application) -> None:
        """Add the routes, and the lifecycle after those already on the app (the core's, the handoff's)."""
        app[self.key] = self
        routes = self.routes()
        app.add_routes(routes)
        app.cleanup_ctx.append(self._lifecycle)
        paths = sorted({route.path for route in routes if isinstance(route, web.RouteDef)})
        log.info("%s channel mounted%s", self.name, f" at {', '.join(paths)}" if paths else "")

    def routes(self) -> list[web.AbstractRouteDef]:
        return []

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self.agent, self.stores = app[AGENT], app[STORES]
        async with self.running(app):
            yield

    @contextlib.asynccontextmanager
    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """What the channel runs for the app's lifetime (nothing by default)."""
        yield

    # -- in and out ------------------------------------------------------------------------------------------

    @abstractmethod
    async def user_message(self, incoming: In) -> UserMessage | None:
        """The platform's input as the bot's input; None when there is nothing for the bot to answer."""

    @abstractmethod
    def render(self, events: list[ev.Event], language: str) -> Out:
        """What the shopper gets for these stored events, in the platform's shape."""

    async def language(self, conversation_id: str) -> str:
        """The language the conversation speaks now (`default_language` before its first turn)."""
        assert self.agent
        return await self.agent.language(conversation_id, self.default_language)

