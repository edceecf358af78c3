"""`GET /api/widget/ws`: one socket per browser tab, bound by `hello` to the session's conversation.

Up to three tasks per socket, so nothing waits on anything else:
- the reader parses frames, applies limits and answers at once (errors, pong, typing);
- the writer sends frames in order: on hello the replay (`seq > last_seq`) and then live events from the
  conversation's room, skipping seqs already sent and filling any gap from the tracker store -- also at once
  when the room says the bus lost events (Redis pub/sub reconnected), not only with the next event. Every
  frame carries its `prev_seq`, so the panel can check that it has them all;
- the worker hands the shopper's messages to `Agent.handle` one at a time, in order, and acks each with the
  seq of its stored `user` event. What the bot answers reaches every tab through the event bus, like an agent's
  message does, so nothing is sent twice. A message is processed even if its socket closes meanwhile.
The writer and the worker run only while they have something to do (started by what is queued for them, ended
when it is done), and one heartbeat task pings every socket of the worker (`heartbeat_forever`) instead of
aiohttp's two timers per socket: most sockets are idle most of the time, a worker holds thousands of them, and
every task, timer and queue an idle socket keeps costs memory, CPU and garbage-collector pauses that every
request of the worker waits through (benchmarks/bench_sockets.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from bot.channels.widget import protocol
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.origins import origin_allowed
from bot.channels.widget.protocol import FrameError, Hello, Outgoing, Ping, Read, Typing
from bot.channels.widget.sessions import Session
from bot.dialogue import events as ev
from bot.http import HTTPError, json_dumps
from bot.ratelimit import conversation_bucket
from bot.stores.buckets import TokenBucket

if TYPE_CHECKING:
    from bot.channels.widget.channel import WidgetChannel

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

HELLO_TIMEOUT_S = 10.0
LIVE_QUEUE = 1000  # frames waiting for a slow socket before it is told to reconnect and replay
FRAMES_PER_S = 5.0  # every frame, typing included
FRAME_BURST = 30
TYPING_EVERY_S = 2.0
HUMAN_STATES = {"requested", "queued", "assigned"}  # the bot stays silent: no bot typing indicator
HEARTBEAT_TICKS = 5  # heartbeat rounds per `heartbeat_s`: a ping goes out 1 to 1.2 intervals after the last frame
HEARTBEAT_BATCH = 500  # sockets pinged between two looks at the event loop

CLOSE_UNAUTHORIZED = 4401  # hello missing or token unknown: get a session (POST /api/widget/session) again
CLOSE_LAGGING = 4409  # fell behind: reconnect and replay from last_seq


@routes.get("/api/widget/ws")
async def widget_socket(request: web.Request) -> web.StreamResponse:
    widget = request.app[WIDGET]
    if not origin_allowed(request, widget.settings):
        # before the upgrade: a page on another site never gets a socket (S3)
        raise HTTPError(403, "this site is not allowed to open the chat "
                             "(channels.widget.allowed_origins in endpoints.yml)")
    # no per-socket heartbeat: heartbeat_forever pings them all; pings from the client are answered by run()
    ws = web.WebSocketResponse(autoping=False, max_msg_size=widget.settings.max_frame_bytes * 4)
    await ws.prepare(request)
    connection = Connection(ws, widget, request.remote)
    widget.open.sockets.add(connection)
    try:
        await connection.run()
    finally:
        widget.open.sockets.discard(connection)
    return ws


async def heartbeat_forever(sockets: Collection[Connection], interval_s: float) -> None:
    """The heartbeat of every socket of the worker, from one task: a socket silent for `interval_s` gets a ping,
    and one that has sent nothing `interval_s / 2` after its ping is closed (what aiohttp's `heartbeat` does,
    with two timers and a task per socket, whose churn at thousands of sockets costs CPU and full garbage
    collections)."""
    while True:
        await asyncio.sleep(interval_s / HEARTBEAT_TICKS)
        now = time.monotonic()
        for i, connection in enumerate(list(sockets)):
            await connection.heartbeat(now, interval_s)
            if i % HEARTBEAT_BATCH == HEARTBEAT_BATCH - 1:
                await asyncio.sleep(0)


class Connection:
    def __init__(self, ws: web.WebSocketResponse, widget: WidgetChannel, client: str | None) -> None:
        assert widget.agent and widget.stores
        self.ws = ws
        self.widget = widget
        self.client = client  # the shopper's address (bot/client_ip.py): its messages are limited together
        self.limits = widget.open.limits
        self.exempt = self.limits.is_exempt(client)
        self.agent = widget.agent
        self.stores = widget.stores
        self.session: Session | None = None
        self.outbox: deque[tuple[str, Any]] = deque()  # for the writer, at most LIVE_QUEUE
        self.inbox: deque[Outgoing] = deque()  # for the worker
        self.writer: asyncio.Task[None] | None = None  # while the outbox has something
        self.worker: asyncio.Task[None] | None = None  # while the inbox has something
        self.last_sent = 0  # every stored event up to this seq went through this socket (shown or not)
        self.last_shown = 0  # the seq of the last frame sent: the next frame's prev_seq
        self.handoff: str | None = None
        self.bad_frames = 0
        self.read_seq = 0
        self.frames = TokenBucket(FRAMES_PER_S, FRAME_BURST)
        self.typing = TokenBucket(1 / TYPING_EVERY_S, 1)
        self.typing_on = False
        self.closing = False
        self.heard = time.monotonic()  # the last frame from the client (any: a pong is one)
        self.pinged = 0.0  # when the last heartbeat ping went out

    @property
    def conversation_id(self) -> str:
        assert self.session is not None
        return self.session.conversation_id

    # -- life cycle ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            hello = await self._hello()
            if hello is None:
                await self._flush_and_close(CLOSE_UNAUTHORIZED, b"hello with a valid token first")
                return
            self._queue(("sync", hello.last_seq))  # queued before joining: replay comes first
            self.widget.open.rooms.join(self.conversation_id, self)
            while (message := await self._receive()).type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if message.type == WSMsgType.TEXT:
                    await self._on_text(message.data)
                else:
                    await self._refuse(FrameError("bad_frame", "frames are JSON text"))
        finally:
            if self.session is not None:
                self.widget.open.rooms.leave(self.conversation_id, self)
                if self.typing_on:
                    await self._publish_typing("user", False)
            # a worker finishes what was sent, then stops; the writer has nobody to write to
            if self.writer is not None:
                self.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.writer

    async def _hello(self) -> Hello | None:
        """The first frame must be `hello` with a live token (else: error + close 4401, and the panel asks
        for a session again). Nothing else is read before it."""
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                message = await self._receive()
        except TimeoutError:
            self._send(protocol.error("unauthorized", "no hello"))
            return None
        if message.type != WSMsgType.TEXT:
            return None
        try:
            frame = protocol.parse_client_frame(message.data, self.widget.settings)
        except FrameError as exc:
            self._send(protocol.error(exc.code, exc.message))
            return None
        if not isinstance(frame, Hello):
            self._send(protocol.error("unauthorized", "the first frame must be hello"))
            return None
        self.session = await self.widget.open.sessions.resolve(frame.token)
        if self.session is None:
            self._send(protocol.error("unauthorized", "unknown or expired session"))
            return None
        return frame

    async def _flush_and_close(self, code: int, reason: bytes) -> None:
        if self.writer is not None:  # it ends once the outbox is sent
            await asyncio.wait({self.writer}, timeout=2)
        await self.ws.close(code=code, message=reason)

    # -- reading ------------------------------------------------------------------------------------------------

    async def _receive(self) -> WSMessage:
        """The client's next text or binary frame, or the end (close, error). Pings are answered here; every
        frame, a pong included, tells the heartbeat the client is there."""
        while True:
            message = await self.ws.receive()
            self.heard = time.monotonic()
            if message.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.pong(message.data)
            elif message.type != WSMsgType.PONG:
                return message

    async def heartbeat(self, now: float, interval_s: float) -> None:
        """From `heartbeat_forever`: ping a socket silent for `interval_s`; close one that did not answer."""
        if self.pinged > self.heard:  # a ping is out and nothing came back yet
            if now - self.pinged >= interval_s / 2 and not self.closing:
                self.closing = True
                task = asyncio.get_running_loop().create_task(
                    self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"no pong", drain=False))
                self.widget.spawn(task)
        elif now - self.heard >= interval_s and not self.ws.closed:
            self.pinged = now
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.ping()

    async def _on_text(self, data: str) -> None:
        if not self.exempt and self.frames.take():
            await self._refuse(FrameError("rate_limited", "too many frames"), strike=True)
            return
        try:
            frame = protocol.parse_client_frame(data, self.widget.settings)
        except FrameError as exc:
            await self._refuse(exc)
            return
        if isinstance(frame, Outgoing):
            await self._on_outgoing(frame)
        elif isinstance(frame, Typing):
            if (frame.on and self.typing.take() == 0) or (not frame.on and self.typing_on):
                self.typing_on = frame.on
                await self._publish_typing("user", frame.on)
        elif isinstance(frame, Read):
            if frame.seq > self.read_seq:
                self.read_seq = frame.seq
                await self.stores.trackers.set_meta(self.conversation_id, widget_read_seq=frame.seq)
        elif isinstance(frame, Ping):
            self._send({"type": "pong"})
        else:
            await self._refuse(FrameError("bad_frame", "already said hello"))

    async def _on_outgoing(self, frame: Outgoing) -> None:
        wait = await self.limits.wait_s(self.client, f"widget:client:{self.client}", self.widget.client_messages) \
            or await self.limits.wait_s(self.client, conversation_bucket("widget", self.conversation_id),
                                        self.widget.conversation_messages)
        if wait:
            seq = await self._stored_seq(frame.client_msg_id)
            if seq is not None:  # a resend of something already processed costs nothing: re-ack it
                self._send({"type": "ack", "client_msg_id": frame.client_msg_id, "seq": seq})
                return
            self._send(protocol.error("rate_limited", "too many messages; wait a moment",
                                      client_msg_id=frame.client_msg_id, retry_after_s=round(wait, 1)))
            return
        self.inbox.append(frame)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._work(), name="kefu-widget-worker")
            self.widget.spawn(self.worker)

    async def _refuse(self, exc: FrameError, strike: bool = True) -> None:
        """An error frame; after `max_bad_frames` of them the socket is closed (1008)."""
        self._send(protocol.error(exc.code, exc.message, client_msg_id=exc.client_msg_id))
        if strike:
            self.bad_frames += 1
            if self.bad_frames >= self.widget.settings.max_bad_frames and not self.closing:
                self.closing = True
                await asyncio.sleep(0.05)  # let the writer send the error first
                await self.ws.close(code=1008, message=b"too many bad frames")

    # -- writing ------------------------------------------------------------------------------------------------

    def deliver(self, event: ev.Event) -> None:
        """From the room: queue a live event."""
        self._queue(("event", event))

    def _queue(self, item: tuple[str, Any]) -> None:
        """For the writer (started if it is not running). A socket too far behind is asked to reconnect (and
        replay)."""
        if len(self.outbox) >= LIVE_QUEUE:
            if not self.closing:
                self.closing = True
                log.warning("widget socket of %s is not keeping up; asking it to reconnect", self.conversation_id)
                task = asyncio.get_running_loop().create_task(self.ws.close(code=CLOSE_LAGGING, message=b"lagging"))
                self.widget.spawn(task)
            return
        self.outbox.append(item)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write(), name="kefu-widget-writer")

    def resync(self) -> None:
        """From the room: the bus lost events; send what the store has that this socket has not."""
        self._queue(("fill", None))

    def _send(self, frame: protocol.Frame) -> None:
        if len(self.outbox) < LIVE_QUEUE:
            self._queue(("frame", frame))

    async def _write(self) -> None:
        """Send what is queued, in order, and end (the next `_queue` starts a new writer)."""
        try:
            while self.outbox:
                kind, value = self.outbox.popleft()
                if kind == "frame":
                    await self.ws.send_str(json_dumps(value))
                elif kind == "sync":
                    await self._replay(value)
                elif kind == "fill":
                    await self._fill()
                else:
                    await self._live(value)
        except (ConnectionError, RuntimeError):
            self.outbox.clear()  # the socket closed under us; run() cleans up
        self.writer = None  # an idle socket keeps no task

    async def _replay(self, last_seq: int) -> None:
        events = await self.stores.trackers.events(self.conversation_id)
        last = events[-1]["seq"] if events else 0
        state = protocol.conversation_state(events)
        self.handoff = state["handoff"]
        await self.ws.send_str(json_dumps({"type": "welcome", "conversation_id": self.conversation_id,
                                           "last_seq": last, "state": state}))
        self.last_sent = min(last_seq, last)
        self.last_shown = protocol.last_shown(events, self.last_sent)
        for event in events:
            if event["seq"] > self.last_sent:
                await self._emit(event)
        await self.ws.send_str(json_dumps({"type": "ready", "last_seq": last}))

    async def _live(self, event: ev.Event) -> None:
        seq = event.get("seq")
        if seq is None:  # ephemeral (typing)
            frame = protocol.render_event(event)
            if frame is not None:
                await self.ws.send_str(json_dumps(frame))
            return
        if seq <= self.last_sent:
            return  # already replayed or sent
        if seq > self.last_sent + 1:  # a gap (the bus lost events): the store has it all
            await self._fill()
            return
        await self._emit(event)

    async def _fill(self) -> None:
        for event in await self.stores.trackers.events(self.conversation_id, after_seq=self.last_sent):
            await self._emit(event)

    async def _emit(self, event: ev.Event) -> None:
        self.last_sent = max(self.last_sent, event["seq"])
        frame = protocol.render_event(event)
        if frame is None:
            return
        frame["prev_seq"], self.last_shown = self.last_shown, event["seq"]
        if frame["type"] == "handoff":
            self.handoff = frame["state"]
        await self.ws.send_str(json_dumps(frame))

    # -- the bot ------------------------------------------------------------------------------------------------

    async def _work(self) -> None:
        """Process what the shopper sent, one at a time, in order, and end (the next message starts a new one)."""
        while self.inbox:
            frame = self.inbox.popleft()
            try:
                await self._process(frame)
            except Exception:
                log.exception("widget message %s failed", frame.client_msg_id)
                self._send(protocol.error("internal", "the message could not be processed; it will be retried",
                                          client_msg_id=frame.client_msg_id))
        self.worker = None

    async def _process(self, frame: Outgoing) -> None:
        try:
            message = await self.widget.user_message((self.conversation_id, frame))
        except FrameError as exc:
            self._send(protocol.error(exc.code, exc.message, client_msg_id=exc.client_msg_id))
            return
        bot_typing = self.handoff not in HUMAN_STATES
        if bot_typing:
            await self._publish_typing("bot", True)
        try:
            stored = await self.agent.handle(message)
        finally:
            if bot_typing:
                await self._publish_typing("bot", False)
        seq = next((e["seq"] for e in stored if e.get("event") == "user"
                    and e.get("message_id") == frame.client_msg_id), None)
        if seq is None:  # a duplicate: Agent.handle stored nothing; ack with the original's seq (S6)
            seq = await self._stored_seq(frame.client_msg_id)
        self._send({"type": "ack", "client_msg_id": frame.client_msg_id, "seq": seq})

    async def _stored_seq(self, client_msg_id: str) -> int | None:
        for event in reversed(await self.stores.trackers.events(self.conversation_id)):
            if event.get("event") == "user" and event.get("message_id") == client_msg_id:
                return event["seq"]
        return None

    async def _publish_typing(self, role: str, on: bool) -> None:
        await self.stores.bus.publish(self.conversation_id, {"event": ev.TYPING, "role": role, "on": on})
