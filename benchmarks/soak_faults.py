"""Soak with faults: what every client was told was kept, against what the trackers hold (issue 14, Prove 1).

    make soak [SOAK_CONVERSATIONS=1000] [SOAK_MINUTES=3] [SOAK_CONCURRENCY=100]
    .venv/bin/python benchmarks/soak_faults.py [--conversations N] [--minutes M] [--concurrency C] [--model F]

Three `kefu run` workers share one real redis-server (AOF, `appendfsync everysec`, as in production). Shoppers
talk over REST, the chat bubble's WebSocket, WeChat and Messenger (fake WeChat and Graph API servers on
127.0.0.1 record what kefu sends); some ask for a person, and scripted agents answer and close through the agent
API. Clients retry as the real ones do (REST and WeChat with the same message id, Meta on any non-200, the
bubble by reconnecting and resending unacknowledged `client_msg_id`s); requests go round-robin to the workers
still alive, as a load balancer would send them. During the run: `kill -9` of one worker and a new one started,
a redis-server restart, Redis paused for 5 s (SIGSTOP / SIGCONT).

Afterwards, with every worker alive: each acknowledged shopper message must be stored exactly once (by its
id); each agent reply the agent API acknowledged stored once; each bot answer and agent reply in a tracker
delivered at least once to its shopper and shown once (WeChat and Messenger: what reached the fake upstream;
the bubble: distinct `seq`s received); no handoff left open; the queue's positions, sampled during the run,
always 1…n. Prints a table and exits 1 when anything was lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_server import KEFU, ROOT, free_port, percentile, wait_ready
from load_soak import Traffic, copy_project, train

from bot.channels.messenger.config import MessengerSettings
from bot.channels.messenger.outbound import render as messenger_render
from bot.channels.wechat import xml as wechat_xml
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.outbound import render as wechat_render
from tests.channels.conftest import (
    FB_SECRET,
    WX_AES_KEY,
    WX_APPID,
    fb_headers,
    fb_text,
    messenger_body,
    messenger_env,
    text_xml,
    wechat_env,
    wechat_push,
)
from tests.channels.fakes import FakeGraph, FakeWeChat

CHANNELS = ("rest", "widget", "wechat", "messenger")
HANDOFF_PHRASES = {"zh": "转人工", "en": "I want to talk to a human agent"}
STILL_THERE = {"zh": "还在吗？我等着呢", "en": "hello? still waiting"}
API_TOKEN = "soak-api-token"
ORIGIN = "http://127.0.0.1:5005"
AGENT_PASSWORD = "soak-agent-password"
AGENT_TOKEN = re.compile(r"\[agent-reply ([0-9a-f]{12})\]")
OPEN_STATES = ("requested", "queued", "assigned")


# -- the cluster: redis-server, workers, faults ---------------------------------------------------------------

class Cluster:
    """One redis-server with AOF everysec and the `kefu run` workers on it; the faults act on these."""

    def __init__(self, workdir: Path, model: Path, env: dict[str, str]) -> None:
        self.workdir, self.model, self.env = workdir, model, env
        self.redis_port = free_port()
        self.redis: subprocess.Popen | None = None
        self.workers: list[tuple[subprocess.Popen, str]] = []
        self.alive: list[str] = []  # what the load balancer sends to
        self.turn = 0

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline or self.redis.poll() is not None:
                raise RuntimeError("redis-server did not start:\n" + (self.workdir / "redis.log").read_text()[-2000:])
            time.sleep(0.05)

    async def start_worker(self) -> str:
        index, port = len(self.workers), free_port()
        log = (self.workdir / f"worker-{index}.log").open("wb")
        # PYTHONPATH: this checkout's code, whichever checkout the venv's `kefu` was installed from
        env = {**os.environ, **self.env, "REDIS_URL": self.redis_url, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([KEFU, "run", "--port", str(port), "--model", str(self.model)], cwd=self.workdir,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        self.workers.append((proc, url))
        try:
            await wait_ready(url, proc, timeout=300)
        except RuntimeError:
            raise RuntimeError(f"worker {index} did not start:\n"
                               + (self.workdir / f"worker-{index}.log").read_text()[-3000:]) from None
        self.alive.append(url)
        return url

    def url(self) -> str:
        self.turn += 1
        return self.alive[self.turn % len(self.alive)]

    def kill_worker(self, index: int) -> None:
        proc, url = self.workers[index]
        self.alive.remove(url)  # the load balancer's health check notices after a while; clients retry meanwhile
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    async def restart_redis(self) -> float:
        started = time.monotonic()
        assert self.redis is not None
        self.redis.terminate()  # SIGTERM: redis writes and fsyncs its AOF and stops, as `systemctl restart` does
        await asyncio.to_thread(self.redis.wait)
        await asyncio.to_thread(self.start_redis)
        return time.monotonic() - started

    async def pause_redis(self, seconds: float) -> None:
        assert self.redis is not None
        self.redis.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.redis.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for proc, _ in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.send_signal(signal.SIGCONT)
            self.redis.terminate()
            self.redis.wait(timeout=10)


# -- what the clients were told ------------------------------------------------------------------------------

@dataclass
class Sent:
    channel: str
    conversation_id: str
    message_id: str
    acknowledged: bool = False


@dataclass
class Ledger:
    messages: list[Sent] = field(default_factory=list)
    agent_replies: dict[str, str] = field(default_factory=dict)  # reply token → conversation id (acknowledged)
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    conversations: dict[str, str] = field(default_factory=dict)  # conversation id → channel
    widget_seen: dict[str, collections.Counter[int]] = field(default_factory=lambda: collections.defaultdict(
        collections.Counter))  # conversation → seq → times received
    wechat_passive: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    queue_samples: int = 0
    queue_problems: list[str] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] += 1


def error_kind(exc: BaseException | None = None, status: int | None = None, where: str = "") -> str:
    what = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{where} {what}".strip()


async def post_with_retries(ledger: Ledger, cluster: Cluster, session: aiohttp.ClientSession, channel: str,
                            send, attempts: int, timeout_s: float) -> Any:
    """Send until a worker acknowledges (or attempts run out), as the channel's real client would; the latency
    of the acknowledged attempt counts. Returns what `send` returned for it, or None."""
    for attempt in range(attempts):
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                status, result, retry_after = await send(session, cluster.url())
        except (aiohttp.ClientError, TimeoutError) as exc:
            ledger.error(error_kind(exc, where=channel))
        else:
            if status == 200:
                ledger.latencies[channel].append((time.perf_counter() - started) * 1000)
                return result
            ledger.error(error_kind(status=status, where=channel))
            if retry_after:
                await asyncio.sleep(min(float(retry_after), 5))
                continue
        await asyncio.sleep(min(0.5 * 2 ** attempt, 4) * random.uniform(0.5, 1.0))
    return None


# -- the shoppers, one function per channel ------------------------------------------------------------------

@dataclass
class Script:
    """What one shopper will say."""

    language: str
    texts: list[str]


def script_for(traffic: Traffic, rng: random.Random, handoff_share: float, turns: int) -> Script:
    language = rng.choice(("zh", "en"))
    texts = [rng.choice(traffic.messages) for _ in range(turns)]
    if rng.random() < handoff_share:
        texts = [*texts[:1], HANDOFF_PHRASES[language], STILL_THERE[language]]
    return Script(language, texts)


async def think(rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0.5, 2.0))


async def rest_shopper(ctx: Context, number: int, script: Script) -> None:
    sender = f"soak-rest-{number}"
    ctx.ledger.conversations[sender] = "rest"
    for text in script.texts:
        sent = Sent("rest", sender, f"rest-{number}-{uuid.uuid4().hex[:8]}")
        ctx.ledger.messages.append(sent)

        async def send(session, url, sent=sent, text=text):
            async with session.post(url + "/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                    headers={"X-Message-Id": sent.message_id}) as resp:
                await resp.read()
                return resp.status, True, resp.headers.get("Retry-After")

        sent.acknowledged = bool(await post_with_retries(ctx.ledger, ctx.cluster, ctx.session, "rest", send, 8, 30))
        await think(ctx.rng)


async def wechat_shopper(ctx: Context, number: int, script: Script) -> None:
    openid = f"oSOAK{number:023d}"
    cid = f"wechat:{openid}"
    ctx.ledger.conversations[cid] = "wechat"
    cipher = MessageCipher(WX_AES_KEY, WX_APPID)
    for index, text in enumerate(script.texts):
        msg_id = str(24_000_000_000_000_000 + number * 100 + index)
        sent = Sent("wechat", cid, msg_id)
        ctx.ledger.messages.append(sent)
        plain = text_xml(text, msg_id, openid=openid)

        async def send(session, url, plain=plain):
            query, body = wechat_push(plain, nonce=str(random.randrange(10**9)))
            async with session.post(f"{url}/webhooks/wechat?{query}", data=body,
                                    headers={"Content-Type": "text/xml"}) as resp:
                raw = await resp.read()
                return resp.status, raw or b"-", resp.headers.get("Retry-After")

        # WeChat waits 5 s for an answer and tries three times in all
        raw = await post_with_retries(ctx.ledger, ctx.cluster, ctx.session, "wechat", send, 3, 5)
        sent.acknowledged = raw is not None
        if raw and raw.startswith(b"<xml"):
            envelope = wechat_xml.parse(raw, 1 << 20)
            reply = wechat_xml.parse(cipher.decrypt(envelope.get("Encrypt")).encode(), 1 << 20)
            ctx.ledger.wechat_passive[openid].append(reply.get("Content"))
        await think(ctx.rng)


async def messenger_shopper(ctx: Context, number: int, script: Script) -> None:
    psid = f"{7_000_000_000_000 + number}"
    cid = f"messenger:{psid}"
    ctx.ledger.conversations[cid] = "messenger"
    for index, text in enumerate(script.texts):
        mid = f"m_soak_{number}_{index}"
        sent = Sent("messenger", cid, mid)
        ctx.ledger.messages.append(sent)
        body = messenger_body([fb_text(psid, mid, text)])

        async def send(session, url, body=body):
            async with session.post(url + "/webhooks/messenger", data=body, headers=fb_headers(body, FB_SECRET)) as r:
                await r.read()
                return r.status, True, None

        # Meta resends an undelivered event for hours; six tries cover every fault here
        sent.acknowledged = bool(await post_with_retries(ctx.ledger, ctx.cluster, ctx.session, "messenger", send,
                                                         6, 20))
        await think(ctx.rng)


class WidgetShopper:
    """A tab with the chat bubble: a session token, a socket that reconnects to any live worker and resends what
    was not acknowledged, and every frame received (by seq) until the end of the run."""

    def __init__(self, ctx: Context, number: int) -> None:
        self.ctx, self.number = ctx, number
        self.http = ctx.widget_http[number % len(ctx.widget_http)]  # shoppers come from many addresses
        self.token: str | None = None
        self.conversation_id = ""
        self.last_seq = 0
        self.pending: dict[str, tuple[Sent, str, float]] = {}  # client_msg_id → (sent, text, sent at)
        self.acked: dict[str, asyncio.Event] = {}
        self.connected = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.done = False

    async def session(self) -> None:
        for attempt in range(10):
            url = self.ctx.cluster.url()
            try:
                async with self.http.post(url + "/api/widget/session", json={"token": self.token}
                                                 if self.token else {}, headers={"Origin": ORIGIN}) as resp:
                    if resp.status == 200:
                        data = await resp.json()
                        self.token, self.conversation_id = data["token"], data["conversation_id"]
                        self.ctx.ledger.conversations[self.conversation_id] = "widget"
                        return
                    self.ctx.ledger.error(error_kind(status=resp.status, where="widget session"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.ctx.ledger.error(error_kind(exc, where="widget session"))
            await asyncio.sleep(min(0.5 * 2 ** attempt, 4))
        raise RuntimeError("no widget session after 10 tries")

    async def keep_connected(self) -> None:
        """Until the run ends: connect, hello, resend what waits for an ack, read frames; on a drop, again."""
        attempt = 0
        while not self.done:
            try:
                async with self.http.ws_connect(self.ctx.cluster.url() + "/api/widget/ws",
                                                       headers={"Origin": ORIGIN}, heartbeat=20) as ws:
                    await ws.send_json({"type": "hello", "token": self.token, "last_seq": self.last_seq})
                    self.ws = ws
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        await self.on_frame(json.loads(msg.data))
                        attempt = 0
                    if ws.close_code and ws.close_code != 1000 and not self.done:
                        self.ctx.ledger.error(f"widget socket closed {ws.close_code}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not self.done:
                    self.ctx.ledger.error(error_kind(exc, where="widget socket"))
            finally:
                self.ws = None
                self.connected.clear()
            if self.done:
                return
            attempt += 1
            await asyncio.sleep(min(0.3 * 2 ** attempt, 4) * random.uniform(0.5, 1.0))

    async def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ready":
            self.connected.set()
            for cmid, (_, text, _) in list(self.pending.items()):  # resent with the same id: kept once
                await self.send_frame(cmid, text)
        elif kind == "ack":
            waiting = self.pending.pop(frame.get("client_msg_id"), None)
            if waiting:
                sent, _, at = waiting
                sent.acknowledged = True
                self.ctx.ledger.latencies["widget"].append((time.perf_counter() - at) * 1000)
                self.acked[sent.message_id].set()
        elif kind == "error":
            self.ctx.ledger.error(f"widget frame error {frame.get('code')}")
            cmid = frame.get("client_msg_id")
            if cmid in self.pending:  # not kept: the panel sends it again, with the same id
                delay = float(frame.get("retry_after_s") or 1.0)
                self.ctx.background.append(asyncio.create_task(self.resend_later(cmid, delay)))
        if isinstance(frame.get("seq"), int):
            self.ctx.ledger.widget_seen[self.conversation_id][frame["seq"]] += 1
            self.last_seq = max(self.last_seq, frame["seq"])
        if kind == "welcome" and frame.get("conversation_id") != self.conversation_id:
            self.ctx.ledger.error("widget welcome for another conversation")

    async def resend_later(self, cmid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if cmid in self.pending:
            await self.send_frame(cmid, self.pending[cmid][1])

    async def send_frame(self, cmid: str, text: str) -> None:
        if self.ws is None:
            return
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):  # the reader reconnects
            await self.ws.send_json({"type": "message", "client_msg_id": cmid, "text": text})

    async def say(self, text: str) -> None:
        sent = Sent("widget", self.conversation_id, str(uuid.uuid4()))
        self.ctx.ledger.messages.append(sent)
        self.acked[sent.message_id] = asyncio.Event()
        self.pending[sent.message_id] = (sent, text, time.perf_counter())
        if self.connected.is_set():
            await self.send_frame(sent.message_id, text)
        try:
            async with asyncio.timeout(60):
                await self.acked[sent.message_id].wait()
        except TimeoutError:
            self.ctx.ledger.error("widget no ack in 60 s")


async def widget_shopper(ctx: Context, number: int, script: Script) -> None:
    shopper = WidgetShopper(ctx, number)
    await shopper.session()
    ctx.widgets.append(shopper)
    ctx.background.append(asyncio.create_task(shopper.keep_connected()))
    for text in script.texts:
        await shopper.say(text)
        await think(ctx.rng)


# -- the agents ----------------------------------------------------------------------------------------------

async def agent_call(ctx: Context, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    url = ctx.cluster.url()
    async with ctx.session.request(method, url + "/api/agent" + path, json=body,
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json(content_type=None) if resp.content_type == "application/json" else await resp.text()
        return resp.status, data


async def agent(ctx: Context, username: str) -> None:
    """Logs in, stays online, answers each conversation given to it once (its text carries a token) and closes
    it. After an uncertain write it reads the transcript before writing again, as a person would."""
    token = ""
    resolution = "resolved"
    answered: set[str] = set()
    last_status = 0.0
    while not ctx.agents_done:
        try:
            if not token:
                async with ctx.session.post(ctx.cluster.url() + "/api/agent/login",
                                            json={"username": username, "password": AGENT_PASSWORD}) as resp:
                    if resp.status != 200:
                        ctx.ledger.error(error_kind(status=resp.status, where="agent login"))
                        await asyncio.sleep(1)
                        continue
                    token = (await resp.json())["token"]
                status, me = await agent_call(ctx, "GET", "/me", token)
                if status == 200 and me.get("resolutions"):
                    first = me["resolutions"][0]
                    resolution = first.get("id", first) if isinstance(first, dict) else first
            if time.monotonic() - last_status > 20:
                status, _ = await agent_call(ctx, "PUT", "/status", token, {"status": "online"})
                if status == 200:
                    last_status = time.monotonic()
            status, mine = await agent_call(ctx, "GET", "/conversations?mine=1", token)
            if status != 200:
                ctx.ledger.error(error_kind(status=status, where="agent list"))
                await asyncio.sleep(1)
                continue
            for item in mine:
                cid = item["conversation_id"]
                if item.get("state") != "assigned" or item.get("agent") != username:
                    continue
                if cid not in answered:
                    await agent_reply(ctx, token, cid)
                    answered.add(cid)
                status, _ = await agent_call(ctx, "POST", f"/conversations/{cid}/close", token,
                                             {"resolution": resolution})
                if status not in (200, 409):
                    ctx.ledger.error(error_kind(status=status, where="agent close"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            ctx.ledger.error(error_kind(exc, where="agent"))
        await asyncio.sleep(ctx.rng.uniform(0.5, 1.5))


async def agent_reply(ctx: Context, token: str, cid: str) -> None:
    reply = uuid.uuid4().hex[:12]
    text = f"您好，我是客服，马上为您处理 [agent-reply {reply}]"
    for _ in range(10):
        try:
            status, _ = await agent_call(ctx, "POST", f"/conversations/{cid}/messages", token, {"text": text})
            if status == 201:
                ctx.ledger.agent_replies[reply] = cid
                return
            ctx.ledger.error(error_kind(status=status, where="agent message"))
            if status not in (500, 502, 503, 504):
                return
        except (aiohttp.ClientError, TimeoutError) as exc:
            ctx.ledger.error(error_kind(exc, where="agent message"))
            # uncertain: it may be stored; look before writing again
            try:
                status, data = await agent_call(ctx, "GET", f"/conversations/{cid}", token)
                if status == 200 and any(reply in (e.get("text") or "") for e in data.get("events", [])):
                    ctx.ledger.agent_replies[reply] = cid
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass
        await asyncio.sleep(1)


async def watch_queue(ctx: Context, token_of: str) -> None:
    """Samples the queue from any worker: positions must be 1…n, each conversation once."""
    token = ""
    while not ctx.agents_done:
        try:
            if not token:
                async with ctx.session.post(ctx.cluster.url() + "/api/agent/login",
                                            json={"username": token_of, "password": AGENT_PASSWORD}) as resp:
                    if resp.status == 200:
                        token = (await resp.json())["token"]
            status, queue = await agent_call(ctx, "GET", "/queue", token)
            if status == 200:
                ctx.ledger.queue_samples += 1
                positions = [item.get("position") for item in queue]
                ids = [item["conversation_id"] for item in queue]
                if positions != list(range(1, len(queue) + 1)) or len(set(ids)) != len(ids):
                    ctx.ledger.queue_problems.append(f"positions {positions[:20]} for {len(queue)} waiting")
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(2)


# -- the run -------------------------------------------------------------------------------------------------

@dataclass
class Context:
    cluster: Cluster
    session: aiohttp.ClientSession
    ledger: Ledger
    rng: random.Random
    wechat: FakeWeChat
    graph: FakeGraph
    widget_http: list[aiohttp.ClientSession] = field(default_factory=list)
    widgets: list[WidgetShopper] = field(default_factory=list)
    background: list[asyncio.Task] = field(default_factory=list)
    agents_done: bool = False


async def faults(ctx: Context, seconds: float, log: list[str]) -> None:
    """kill -9 a worker and start another at 20 %, restart redis-server at 45 %, pause Redis 5 s at 70 %."""
    started = time.monotonic()

    async def at(share: float) -> None:
        await asyncio.sleep(max(0.0, started + share * seconds - time.monotonic()))

    def note(text: str) -> None:
        line = f"{time.monotonic() - started:6.1f} s  {text}"
        log.append(line)
        print(line, flush=True)

    async def replace_worker() -> None:
        url = await ctx.cluster.start_worker()
        note(f"worker {len(ctx.cluster.workers) - 1} ready at {url}")

    await at(0.20)
    ctx.cluster.kill_worker(0)
    note("kill -9 worker 0; starting another")
    replacement = asyncio.create_task(replace_worker())
    await at(0.45)
    took = await ctx.cluster.restart_redis()
    note(f"redis-server restarted (down {took:.1f} s)")
    await at(0.70)
    note("redis paused (SIGSTOP) for 5 s")
    await ctx.cluster.pause_redis(5)
    note("redis continued (SIGCONT)")
    await replacement


async def shoppers(ctx: Context, traffic: Traffic, args: argparse.Namespace) -> None:
    gate = asyncio.Semaphore(args.concurrency)
    spacing = args.minutes * 60 / args.conversations
    runners = {"rest": rest_shopper, "widget": widget_shopper, "wechat": wechat_shopper,
               "messenger": messenger_shopper}

    async def one(number: int) -> None:
        async with gate:
            channel = CHANNELS[number % len(CHANNELS)]
            script = script_for(traffic, ctx.rng, args.handoff_share, args.turns)
            try:
                await runners[channel](ctx, number, script)
            except Exception as exc:  # a crash in the soak's own client must show, not hide the others
                ctx.ledger.error(f"{channel} client {type(exc).__name__}: {exc}"[:120])

    tasks = []
    for number in range(args.conversations):
        tasks.append(asyncio.create_task(one(number)))
        await asyncio.sleep(spacing)
    await asyncio.gather(*tasks)


async def settle(ctx: Context, token: str, limit_s: float) -> float:
    """Wait until no handoff is open and nothing new reaches the fakes or the sockets for 10 s (left-behind
    messages are swept after 60 s, so this can take a while)."""
    started = time.monotonic()
    quiet_since, last = time.monotonic(), None
    while time.monotonic() - started < limit_s:
        await asyncio.sleep(2)
        try:
            status, open_now = await agent_call(ctx, "GET", "/conversations", token)
        except (aiohttp.ClientError, TimeoutError):
            continue
        seen = (len(ctx.wechat.calls), len(ctx.graph.calls),
                sum(sum(c.values()) for c in ctx.ledger.widget_seen.values()), len(open_now or []))
        if seen != last:
            last, quiet_since = seen, time.monotonic()
        elif status == 200 and not open_now and time.monotonic() - quiet_since > 10:
            break
    return time.monotonic() - started


async def tracker(ctx: Context, cid: str) -> list[dict[str, Any]]:
    for _ in range(5):
        try:
            async with ctx.session.get(f"{ctx.cluster.url()}/conversations/{cid}/tracker",
                                       headers={"Authorization": f"Bearer {API_TOKEN}"}) as resp:
                if resp.status == 200:
                    return (await resp.json())["events"]
                if resp.status == 404:  # nothing stored under this id (a session whose messages never got through)
                    return []
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(1)
    raise RuntimeError(f"could not read the tracker of {cid}")


@dataclass
class Row:
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    replies: int = 0
    replies_missing: int = 0
    replies_doubled: int = 0


def reply_counts(expected: list[str], delivered: list[str]) -> tuple[int, int]:
    """(missing, doubled) of expected texts in what was delivered, counted by text."""
    want, got = collections.Counter(expected), collections.Counter(delivered)
    missing = sum(max(0, n - got[text]) for text, n in want.items())
    doubled = sum(max(0, got[text] - n) for text, n in want.items())
    return missing, doubled


def wechat_counts(expected: list[str], delivered: list[str]) -> tuple[int, int]:
    """WeChat joins a turn's messages into one text: count each expected block inside what was delivered."""
    joined = "\n\n\x00".join(delivered)
    missing = doubled = 0
    for text, n in collections.Counter(expected).items():
        found = joined.count(text)
        missing += max(0, n - found)
        doubled += max(0, found - n)
    return missing, doubled


async def check(ctx: Context, token: str) -> tuple[dict[str, Row], dict[str, Any]]:
    rows = {channel: Row() for channel in CHANNELS}
    problems: dict[str, Any] = collections.defaultdict(list)
    by_conversation: dict[str, list[Sent]] = collections.defaultdict(list)
    for sent in ctx.ledger.messages:
        by_conversation[sent.conversation_id].append(sent)
    stored_agent: collections.Counter[str] = collections.Counter()
    settings = MessengerSettings(verify_token="x", app_secret="x", page_access_token="x")
    for cid, channel in ctx.ledger.conversations.items():
        events = await tracker(ctx, cid)
        row = rows[channel]
        ids = collections.Counter(e.get("message_id") for e in events if e.get("event") == "user")
        for sent in by_conversation[cid]:
            row.sent += 1
            row.acknowledged += sent.acknowledged
            row.stored += ids[sent.message_id] > 0
            if sent.acknowledged and ids[sent.message_id] == 0:
                row.lost += 1
                problems["lost"].append((cid, sent.message_id))
            if ids[sent.message_id] > 1:
                row.doubled += 1
                problems["doubled"].append((cid, sent.message_id, ids[sent.message_id]))
        for event in events:
            if event.get("event") == "agent_message":
                for reply in AGENT_TOKEN.findall(event.get("text") or ""):
                    stored_agent[reply] += 1
        handoff_state = None
        for event in events:
            kind = event.get("event") or ""
            if kind == "handoff_requested":
                handoff_state = "requested"
            elif kind in ("queued", "agent_assigned"):
                handoff_state = kind
            elif kind in ("handoff_ended", "handoff_unavailable", "handoff_cancelled", "ticket_created"):
                handoff_state = None
        if handoff_state:
            problems["stuck"].append((cid, handoff_state))
        answers = [e for e in events if e.get("event") in ("bot", "agent_message")]
        if channel == "messenger":
            psid = cid.split(":", 1)[1]
            expected = [m.get("text") for e in answers for m in (
                messenger_render([e], settings, "en") if e["event"] == "bot" else [{"text": e.get("text")}])]
            missing, doubled = reply_counts([t for t in expected if t], ctx.graph.texts(psid))
        elif channel == "wechat":
            openid = cid.split(":", 1)[1]
            expected = [wechat_render([e], "zh")[0] if e["event"] == "bot" else e.get("text") or "" for e in answers]
            missing, doubled = wechat_counts([t for t in expected if t],
                                             ctx.wechat.texts(openid) + ctx.ledger.wechat_passive[openid])
        elif channel == "widget":
            seen = ctx.ledger.widget_seen[cid]
            visible = [e.get("seq") for e in answers if isinstance(e.get("seq"), int)]
            expected = visible
            missing = sum(1 for seq in visible if seq not in seen)
            doubled = 0  # the bubble shows a seq once; a stored double is counted above and below
        else:
            expected, missing, doubled = answers, 0, 0  # REST answers are the responses; no push to check
        row.replies += len(expected)
        row.replies_missing += missing
        row.replies_doubled += doubled
        if missing or doubled:
            problems["replies"].append((cid, missing, doubled))
            if channel == "wechat":
                problems["reply details"].append((cid, expected, ctx.wechat.texts(cid.split(":", 1)[1]),
                                                  ctx.ledger.wechat_passive[cid.split(":", 1)[1]]))
            elif channel == "messenger":
                problems["reply details"].append((cid, expected, ctx.graph.texts(cid.split(":", 1)[1])))
    agent_row = Row(sent=len(ctx.ledger.agent_replies), acknowledged=len(ctx.ledger.agent_replies))
    for reply in ctx.ledger.agent_replies:
        agent_row.stored += stored_agent[reply] > 0
        agent_row.lost += stored_agent[reply] == 0
        agent_row.doubled += stored_agent[reply] > 1
    rows["agent API"] = agent_row
    return rows, problems


def print_table(rows: dict[str, Row], ledger: Ledger) -> None:
    print(f"\n| {'':10} | {'sent':>5} | {'acked':>5} | {'stored':>6} | {'lost':>4} | {'doubled':>7} | "
          f"{'replies':>7} | {'undelivered':>11} | {'shown twice':>11} | {'p99 ms':>7} |")
    print(f"|{'-' * 12}|{'-' * 7}|{'-' * 7}|{'-' * 8}|{'-' * 6}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 13}|{'-' * 9}|")
    total = Row()
    for name, row in rows.items():
        lat = ledger.latencies.get(name) or []
        p99 = f"{percentile(lat, 99):7.0f}" if lat else f"{'–':>7}"
        print(f"| {name:10} | {row.sent:5d} | {row.acknowledged:5d} | {row.stored:6d} | {row.lost:4d} | "
              f"{row.doubled:7d} | {row.replies:7d} | {row.replies_missing:11d} | {row.replies_doubled:11d} | {p99} |")
        for name_ in vars(total):
            setattr(total, name_, getattr(total, name_) + getattr(row, name_))
    every = [v for values in ledger.latencies.values() for v in values]
    print(f"| {'total':10} | {total.sent:5d} | {total.acknowledged:5d} | {total.stored:6d} | {total.lost:4d} | "
          f"{total.doubled:7d} | {total.replies:7d} | {total.replies_missing:11d} | {total.replies_doubled:11d} | "
          f"{percentile(every, 99) if every else 0:7.0f} |")


def worker_env(wechat_url: str, graph_url: str) -> dict[str, str]:
    return {**wechat_env(wechat_url), **messenger_env(graph_url), "KEFU_AUTH_TOKEN": API_TOKEN,
            "KEFU_RATE_LIMIT_EXEMPT": "127.0.0.0/8", "WIDGET_ALLOWED_ORIGINS": ORIGIN,
            "WIDGET_MESSAGES_PER_MINUTE": "600", "WECHAT_RETRY_BASE_S": "0.2", "MESSENGER_RETRY_BASE_S": "0.2"}


def open_all_day(workdir: Path) -> None:
    """Agents on duty around the clock, so the run means the same at any hour."""
    path = workdir / "handoff.yml"
    path.write_text(re.sub(r'(?m)^  daily: .*$', '  daily: "24h"', path.read_text(encoding="utf-8")),
                    encoding="utf-8")


def add_agents(workdir: Path, redis_url: str, count: int, capacity: int) -> list[str]:
    names = [f"soak{i}" for i in range(count)]
    for name in names:
        subprocess.run([KEFU, "agents", "add", name, "--password-stdin", "--languages", "zh,en", "--capacity",
                        str(capacity)], cwd=workdir, env={**os.environ, "REDIS_URL": redis_url},
                       input=AGENT_PASSWORD + "\n", text=True, check=True, capture_output=True)
    return names


async def serve(fake) -> web.AppRunner:
    runner = web.AppRunner(fake.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    return runner


def log_problems(workdir: Path) -> collections.Counter[str]:
    """Error lines of the workers' logs, numbers blurred so alike lines count together; a traceback is named by
    its last line (the exception), which is what says whether it was a fault's own."""
    found: collections.Counter[str] = collections.Counter()
    for log in sorted(workdir.glob("worker-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if "Traceback" in line:
                end = next((j for j in range(i + 1, len(lines)) if not lines[j].startswith((" ", "Traceback"))),
                           len(lines) - 1)
                line = "Traceback … " + lines[end]
            elif not (" ERROR " in line or line.startswith("ERROR")):
                continue
            found[re.sub(r"\d+", "N", line)[:160]] += 1
    return found


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=3.0, help="conversations start evenly over this time")
    parser.add_argument("--concurrency", type=int, default=100, help="conversations at once, at most")
    parser.add_argument("--turns", type=int, default=3, help="messages per conversation")
    parser.add_argument("--handoff-share", type=float, default=0.25)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--model", type=Path, default=os.environ.get("KEFU_TEST_MODEL") or None,
                        help="a trained archive of this project (default: $KEFU_TEST_MODEL, else train one)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, AOF)")
    args = parser.parse_args()
    random.seed(args.seed)
    traffic = Traffic.of(ROOT)
    workdir = Path(tempfile.mkdtemp(prefix="kefu-soak-faults-"))
    fakes = FakeWeChat(), FakeGraph()
    runners = [await serve(fake) for fake in fakes]
    copy_project(ROOT, workdir)
    open_all_day(workdir)
    model = args.model.resolve() if args.model else train(workdir, workdir / "models")
    cluster = Cluster(workdir, model, worker_env(fakes[0].url, fakes[1].url))
    fault_log: list[str] = []
    try:
        cluster.start_redis()
        names = add_agents(workdir, cluster.redis_url, args.agents, capacity=5)
        await asyncio.gather(*(cluster.start_worker() for _ in range(3)))
        print(f"soak: {args.conversations} conversations over {args.minutes:g} min, at most {args.concurrency} at "
              f"once, {args.turns} messages each ({args.handoff_share:.0%} ask for a person), {args.agents} agents; "
              f"3 workers on redis-server (AOF everysec); work dir {workdir}", flush=True)
        ledger = Ledger()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            ctx = Context(cluster, session, ledger, random.Random(args.seed), *fakes)
            # the bubble's shoppers from 64 loopback addresses, as from many homes (new chats are limited per address)
            ctx.widget_http = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                limit=0, local_addr=(f"127.0.1.{n + 1}", 0)), timeout=aiohttp.ClientTimeout(total=60))
                for n in range(64)]
            agents = [asyncio.create_task(agent(ctx, name)) for name in names[:-1]]
            agents.append(asyncio.create_task(watch_queue(ctx, names[-1])))
            started = time.perf_counter()
            await asyncio.gather(shoppers(ctx, traffic, args), faults(ctx, args.minutes * 60, fault_log))
            traffic_s = time.perf_counter() - started
            print(f"traffic done in {traffic_s:.0f} s; waiting for the workers to settle", flush=True)
            async with session.post(cluster.url() + "/api/agent/login",
                                    json={"username": names[-1], "password": AGENT_PASSWORD}) as resp:
                token = (await resp.json())["token"]
            settled = await settle(ctx, token, limit_s=180)
            for shopper in ctx.widgets:
                shopper.done = True
                if shopper.ws is not None:
                    await shopper.ws.close()
            ctx.agents_done = True
            await asyncio.gather(*agents, *ctx.background, return_exceptions=True)
            for http in ctx.widget_http:
                await http.close()
            print(f"settled in {settled:.0f} s; comparing {len(ledger.conversations)} trackers", flush=True)
            rows, problems = await check(ctx, token)
        print_table(rows, ledger)
        print("\nfaults (seconds into the traffic):\n" + "\n".join(fault_log))
        print(f"errors by kind (each retried): {dict(ledger.errors.most_common()) or 'none'}")
        print(f"queue: {ledger.queue_samples} samples, {len(ledger.queue_problems)} with positions not 1…n"
              + (f" e.g. {ledger.queue_problems[:3]}" if ledger.queue_problems else ""))
        print(f"handoffs left open: {len(problems['stuck'])}" + (f" {problems['stuck'][:5]}" if problems["stuck"]
                                                                  else ""))
        for kind in ("lost", "doubled", "replies"):
            if problems[kind]:
                print(f"{kind}: {problems[kind][:10]}")
        if problems["reply details"]:
            (workdir / "reply-problems.json").write_text(json.dumps(problems["reply details"], ensure_ascii=False,
                                                                    indent=1), encoding="utf-8")
            print(f"expected and delivered texts of those: {workdir / 'reply-problems.json'} (with --keep)")
        worker_errors = log_problems(workdir)
        print(f"worker log ERROR/Traceback lines: {sum(worker_errors.values())}"
              + "".join(f"\n  {n} × {line}" for line, n in worker_errors.most_common(8)))
        bad = sum(row.lost + row.doubled + row.replies_missing + row.replies_doubled for row in rows.values())
        bad += len(problems["stuck"]) + len(ledger.queue_problems)
        print("\nPASS: nothing acknowledged was lost or doubled" if not bad else f"\nFAIL: {bad} problems")
        return 1 if bad else 0
    finally:
        cluster.stop()
        for runner in runners:
            await runner.cleanup()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
