"""What push channels (WeChat, Messenger) share: ordered per-conversation work, the bus forwarder, text splitting.

A push channel answers a webhook quickly and sends later through the platform's API. Two things make that
correct with several workers: each conversation's outgoing messages go out one after another (`KeyedSerial`),
and every handoff notice or agent reply is sent exactly once, by whoever wins
`claim_message_id(f"out:{conversation_id}:{seq}")` (design.md contracts), in seq order per conversation:
- notices produced by a shopper's own turn (e.g. "we're closed, leave a message" after "转人工") are claimed by
  the request that ran the turn (`turn_output`) and go out with the bot's answer (a WeChat passive reply
  needs no allowance and no verified account);
- everything else (agent replies, later queue updates, agent joined/ended, the rating request an agent's close
  adds) comes from the event bus (`BusForwarder`). The forwarder gives the request a head start on notices
  (`notice_grace_s`) so that which path sends a turn's notice does not depend on scheduling; whichever claims
  first sends, so it is never twice.

`PushChannel` is what both channels' app-scoped objects share (lifecycle, forwarder, the turn's output rule);
`mount` puts a configured one on the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web

from bot.app_keys import AGENT, STORES
from bot.dialogue import events as ev
from bot.notices import is_notice
from bot.stores import KeyValue, LockTimeout, Stores

if TYPE_CHECKING:
    from bot.agent import Agent

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Deliver = Callable[[str, ev.Event], Awaitable[None]]

CLAIM_TTL_S = 7 * 86400.0
OUTBOX_LOCK_S = 60.0
RECOVER_EVERY_S = 30.0
RECOVER_AFTER_S = 60.0  # an inbox entry this old was left by a worker that stopped (turns take seconds)
CATCH_UP_WINDOW_S = 900.0  # catch_up looks at conversations active this recently...
CATCH_UP_AFTER_S = 10.0  # ...at events at least this old (the bus delivers in milliseconds)
CATCH_UP_CONVERSATIONS = 500
CATCH_UP_EVENTS = 100  # per conversation, at most the latest this many (the first sweep after start-up)
SHUTDOWN_GRACE_S = 5.0


def is_forwarded(event: ev.Event) -> bool:
    """What the bus forwarder sends a shopper: agent messages and notices (bot answers go with their turn)."""
    return event.get("event") == ev.AGENT_MESSAGE or is_notice(event)


class KeyedSerial:
    """Runs jobs one after another per key (a conversation) and concurrently across keys.

    Every task is referenced until it ends (asyncio keeps only weak references), so nothing is lost; a failing
    job is logged and the next one still runs.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, job: Job) -> None:
        self._jobs.setdefault(key, deque()).append(job)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"{self.name}:{key}")

    async def _run(self, key: str) -> None:
        jobs = self._jobs[key]
        try:
            while jobs:
                job = jobs.popleft()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: a job for %s failed", self.name, key)
        finally:
            self._workers.pop(key, None)
            if not jobs:
                self._jobs.pop(key, None)

    def __len__(self) -> int:
        return len(self._workers)

    async def drain(self, timeout_s: float) -> None:
        """Let running work finish (shutdown), then cancel what is left."""
        await _drain(list(self._workers.values()), timeout_s)


class Inbox:
    """Shopper messages acknowledged to the platform but not yet answered, kept in the key/value store.

    Meta never resends an event we answered 200, and WeChat never resends a push we answered `success`; so a
    message is kept (`<prefix><id>`) from the acknowledgement until its answer is sent, and any worker's sweep
    (`PushChannel.recover`) finishes what a stopped worker left: entries older than `RECOVER_AFTER_S`. At least
    once: a worker that stopped between sending and `done` gets its message answered twice.
    """

    def __init__(self, prefix: str, clock: Callable[[], float]) -> None:
        self.prefix = prefix
        self.clock = clock
        self.kv: KeyValue | None = None

    async def keep(self, key: str, item: dict[str, Any]) -> None:
        assert self.kv
        await self.kv.set(self.prefix + key, {"item": item, "at": self.clock()})

    async def done(self, key: str) -> None:
        assert self.kv
        await self.kv.delete(self.prefix + key)

    async def left_behind(self) -> list[tuple[str, dict[str, Any]]]:
        """(key, item) of the entries a stopped worker left, re-stamped so the next sweep does not take them too."""
        assert self.kv
        found = []
        for full_key, entry in await self.kv.scan(self.prefix):
            if self.clock() - float(entry.get("at") or 0) >= RECOVER_AFTER_S:
                await self.kv.set(full_key, {**entry, "at": self.clock()})
                found.append((full_key.removeprefix(self.prefix), entry["item"]))
        return found


class TaskSet:
    """Background tasks kept referenced until they end, and cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        await _drain(list(self._tasks), timeout_s)


async def _drain(tasks: list[asyncio.Task[Any]], timeout_s: float) -> None:
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class BusForwarder:
    """Forwards agent replies and handoff notices of one channel's conversations from the event bus.

    Bot answers are not forwarded here: the request that ran the bot turn sends them (passive reply or API).
    """

    def __init__(self, stores: Stores, prefix: str, deliver: Deliver, serial: KeyedSerial,
                 notice_grace_s: float = 2.0, on_typing: Deliver | None = None) -> None:
        self.stores = stores
        self.prefix = prefix
        self.deliver = deliver
        self.serial = serial
        self.notice_grace_s = notice_grace_s
        self.on_typing = on_typing
        self._checked: dict[str, int] = {}  # conversation -> the seq up to which catch_up has looked

    async def catch_up(self, now: float | None = None) -> None:
        """Forward what the bus did not bring: Redis pub/sub drops what is published while a worker reconnects.

        Looks at this channel's conversations active in the last CATCH_UP_WINDOW_S, at their events older than
        CATCH_UP_AFTER_S (the bus had its chance), and forwards those nobody claimed; the claim makes it once.
        """
        now = time.time() if now is None else now
        checked, self._checked = self._checked, {}  # only conversations still in the window are remembered
        for conversation in await self.stores.trackers.conversations(limit=CATCH_UP_CONVERSATIONS):
            if float(conversation.get("updated_at") or 0) < now - CATCH_UP_WINDOW_S:
                break  # newest activity first: the rest is older
            cid, last_seq = conversation["conversation_id"], int(conversation.get("last_seq") or 0)
            if not cid.startswith(self.prefix):
                continue
            after = self._checked[cid] = max(checked.get(cid, 0), last_seq - CATCH_UP_EVENTS)
            if last_seq <= after:
                continue
            for event in await self.stores.trackers.events(cid, after_seq=after):
                if float(event.get("timestamp") or 0) > now - CATCH_UP_AFTER_S:
                    break  # too recent: the bus may still bring it; the next sweep looks again
                self._checked[cid] = event["seq"]
                if is_forwarded(event):
                    self.serial.submit(cid, lambda cid=cid, event=event: self._forward(cid, event, 0.0))

    async def run(self, ready: asyncio.Event) -> None:
        async with self.stores.bus.subscribe() as subscription:
            ready.set()
            while not subscription.closed:
                item = await subscription.get(timeout=30)
                if item is not None:
                    self._route(*item)

    def _route(self, conversation_id: str, event: ev.Event) -> None:
        if not conversation_id.startswith(self.prefix):
            return
        kind = event.get("event")
        if kind == ev.TYPING and event.get("role") == "agent" and self.on_typing is not None:
            self.serial.submit(conversation_id, lambda: self._typing(conversation_id, event))
        elif is_forwarded(event) and isinstance(event.get("seq"), int):
            arrived = asyncio.get_running_loop().time()
            self.serial.submit(conversation_id, lambda: self._forward(conversation_id, event, arrived))

    async def _forward(self, conversation_id: str, event: ev.Event, arrived: float) -> None:
        if is_notice(event):  # the turn that made it may be sending it (turn_output)
            await asyncio.sleep(max(0.0, arrived + self.notice_grace_s - asyncio.get_running_loop().time()))
        # Claim and send under one lock per conversation's outbox: every worker walks the events in seq order,
        # so whoever claims seq N+1 does so after seq N went out -- order holds across workers too.
        trackers = self.stores.trackers
        try:
            async with trackers.lock(f"outbox:{conversation_id}", OUTBOX_LOCK_S):
                if await trackers.claim_message_id(f"out:{conversation_id}:{event['seq']}", CLAIM_TTL_S):
                    await self.deliver(conversation_id, event)
        except LockTimeout:
            log.warning("outbox of a %s conversation busy for %.0f s; another worker delivers event %s",
                        self.prefix.rstrip(":"), OUTBOX_LOCK_S, event["seq"])

    async def _typing(self, conversation_id: str, event: ev.Event) -> None:
        # not stored, so no seq: one worker per conversation, state and second sends it
        second = int(float(event.get("timestamp") or 0))
        key = f"out:{conversation_id}:typing:{bool(event.get('on'))}:{second}"
        if self.on_typing is not None and await self.stores.trackers.claim_message_id(key, 60):
            await self.on_typing(conversation_id, event)


@contextlib.asynccontextmanager
async def forwarding(forwarder: BusForwarder, ready_timeout_s: float = 10.0) -> AsyncIterator[None]:
    """Run a forwarder for the app's lifetime; startup waits until its subscription is live (nothing missed)."""
    ready = asyncio.Event()
    task = asyncio.get_running_loop().create_task(forwarder.run(ready), name=f"forward:{forwarder.prefix}")
    try:
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, task}, timeout=ready_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises what stopped it
        elif not ready.is_set():
            log.warning("%s forwarder: event bus not ready after %.0f s", forwarder.prefix, ready_timeout_s)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def turn_output(stores: Stores, conversation_id: str, stored: list[ev.Event]) -> list[ev.Event]:
    """What the request that ran a shopper's turn shows: the bot's answers, and the notices among the turn's
    events that it wins (the bus forwarder sends those it loses)."""
    shown = []
    for event in stored:
        if not is_notice(event):
            if event.get("event") == "bot":
                shown.append(event)
        elif isinstance(event.get("seq"), int) and \
                await stores.trackers.claim_message_id(f"out:{conversation_id}:{event['seq']}", CLAIM_TTL_S):
            shown.append(event)
    return shown


# -- what both push channels' app-scoped objects share ---------------------------------------------------------

C = TypeVar("C", bound="PushChannel")


class PushChannel:
    """The app-scoped part of a push channel: the app's agent and stores, outgoing work in order per
    conversation (`serial`), background tasks (`tasks`), a clock tests can move, and the bus forwarder for the
    app's lifetime. A channel opens its platform API in `open_api` and sends what the bus brings in `deliver`."""

    prefix: str  # conversation ids are this + the platform's user id
    default_language: str

    def __init__(self, settings: Any, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock  # tests move time; everything reads it through now()
        self.serial = KeyedSerial(f"{self.prefix.rstrip(':')}-out")
        self.tasks = TaskSet()
        self.agent: Agent | None = None
        self.stores: Stores | None = None
        self.inbox = Inbox(f"{self.prefix}inbox:", self.now)
        self.forwarder: BusForwarder | None = None

    def now(self) -> float:
        return self.clock()

    def open_api(self, session: aiohttp.ClientSession) -> None:
        raise NotImplementedError

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        raise NotImplementedError

    async def agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        """An agent started or stopped typing (not stored: from the bus only)."""

    async def recover(self) -> None:
        """Pick up work a stopped worker left behind (at start-up, then every RECOVER_EVERY_S, after the
        forwarder's catch_up)."""

    async def _recovering(self) -> None:
        while True:
            try:
                if self.forwarder is not None:
                    await self.forwarder.catch_up()
                await self.recover()
            except Exception:  # a store hiccup: try again next round
                log.exception("%s: recovery sweep failed", self.prefix.rstrip(":"))
            await asyncio.sleep(RECOVER_EVERY_S)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: after the core's (needs the agent and stores), closed before them."""
        self.agent, self.stores = app[AGENT], app[STORES]
        self.inbox.kv = self.stores.kv
        async with aiohttp.ClientSession() as session:
            self.open_api(session)
            self.forwarder = BusForwarder(self.stores, self.prefix, self.deliver, self.serial,
                                          self.settings.notice_grace_s, on_typing=self.agent_typing)
            async with forwarding(self.forwarder):
                sweeper = asyncio.get_running_loop().create_task(self._recovering())
                yield
                sweeper.cancel()
                await self.tasks.drain(SHUTDOWN_GRACE_S)  # turns still running hand their sends to serial
                await self.serial.drain(SHUTDOWN_GRACE_S)

    async def language(self, conversation_id: str) -> str:
        """The language the conversation speaks now (this channel's default before its first turn)."""
        assert self.agent
        return await self.agent.language(conversation_id, self.default_language)


def mount(app: web.Application, key: web.AppKey[C], channel: C, add_routes: Callable[[web.Application], None]) -> C:
    """Put a configured push channel on the app: its routes, and its lifecycle after the core's."""
    app[key] = channel
    add_routes(app)
    app.cleanup_ctx.append(channel.lifecycle)
    return channel


# -- texts ---------------------------------------------------------------------------------------------------

def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split a long text into parts of at most `limit` (as measured), preferring line breaks, then spaces."""
    text = text.strip()
    if measure(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    while text:
        if measure(text) <= limit:
            parts.append(text)
            break
        cut = _longest_prefix(text, limit, measure)
        for sep in ("\n\n", "\n", "。", ". ", " "):
            at = text.rfind(sep, 0, cut)
            if at > cut // 2:
                cut = at + len(sep)
                break
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    return [p for p in parts if p]


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    lo, hi = 1, len(text)
    while lo < hi:  # the largest n with measure(text[:n]) <= limit (at least one character)
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


# -- shared documents ------------------------------------------------------------------------------------------

async def update_document(kv: Any, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                          attempts: int = 50) -> dict[str, Any] | None:
    """Read-modify-write a key/value document atomically (compare-and-set loop): workers share it."""
    for _ in range(attempts):
        current = await kv.get(key)
        new = change(copy.deepcopy(current))
        if new == current or await kv.cas(key, current, new):
            return new
        await asyncio.sleep(0)
    raise RuntimeError(f"could not update {key!r}: too much contention")
