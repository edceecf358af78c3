"""What a push channel acknowledged is answered once, when Redis stops or a worker dies (issue 14, findings 1, 5).

WeChat never resends a push answered `success` and Meta never resends an event answered 200: so WeChat gets
`success` only for what is kept (a stopped redis-server gets 503, and the retry after it is back is answered
once), a message a dead worker was on is answered on WeChat's retry, and messages a crashed worker left behind
are answered once and in the order sent even when two workers sweep at the same time.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.agent import UserMessage
from bot.app_keys import AGENT, STORES
from bot.channels.messenger import MESSENGER
from bot.channels.messenger.inbound import Incoming
from bot.channels.push.inbox import RECOVER_AFTER_S
from bot.channels.wechat import WECHAT
from bot.stores.redis import open_redis_stores
from tests.channels import conftest as shop
from tests.channels.conftest import OPENID
from tests.channels.test_wechat_webhook import open_reply
from tests.conftest import _free_port, _redis_answers

pytestmark = pytest.mark.redis

CID = f"wechat:{OPENID}"


class RestartableRedis:
    """A redis-server of this test's own (AOF on, as in production), stopped and started again on its port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: run `make install`"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _redis_answers(self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path):
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def wechat_says(worker, text: str, msg_id: str):
    query, body = shop.wechat_push(shop.text_xml(text, msg_id))
    return await worker.post(f"/webhooks/wechat?{query}", data=body)


async def shopper_turns(worker, cid: str = CID) -> tuple[list[str], list[str]]:
    """(user texts, bot texts) stored for the conversation."""
    events = await worker.app[STORES].trackers.events(cid)
    return ([e["text"] for e in events if e["event"] == "user"],
            [e["text"] for e in events if e["event"] == "bot" and e.get("text")])


async def test_wechat_gets_an_error_while_redis_is_down_and_its_retry_is_answered_once(make_client, fake_wechat,
                                                                                    own_redis):
    worker = await make_client(shop.wechat_env(fake_wechat.url), own_redis.url, f"test-{uuid4().hex[:12]}")
    own_redis.stop()
    down = await wechat_says(worker, "运费多少钱", "24000000000014001")
    assert down.status == 503 and await down.text() != "success"  # WeChat sends it again (it would not after success)

    own_redis.start()
    retry = await wechat_says(worker, "运费多少钱", "24000000000014001")
    answer = open_reply(await retry.text()).get("Content")
    again = await wechat_says(worker, "运费多少钱", "24000000000014001")
    assert await again.text() == "success"
    await asyncio.sleep(0.3)
    users, bots = await shopper_turns(worker)
    assert users == ["运费多少钱"] and answer == "\n\n".join(bots) and answer
    assert fake_wechat.sends() == []  # answered once: by the passive reply


async def test_wechats_retry_is_answered_when_the_worker_on_it_died(make_client, fake_wechat, redis_url):
    """A worker took the push, stored the shopper's turn and died before answering: while its hold on the message
    lives the retry gets an error (not `success`), once it expired the retry gets the stored answer."""
    prefix = f"test-{uuid4().hex[:12]}"
    worker = await make_client(shop.wechat_env(fake_wechat.url, WECHAT_REPLY_BUDGET_S="0.5"), redis_url, prefix)
    msg_id = "24000000000014101"
    dead = open_redis_stores(redis_url, prefix=f"{prefix}:", lock_ttl_s=1.0)
    hold = dead.trackers.lock(f"wechat:turn:{msg_id}")  # the dead worker's hold on the message
    before = asyncio.all_tasks()
    await hold.__aenter__()  # never left: the worker dies holding it
    [keeper] = asyncio.all_tasks() - before
    stored = await worker.app[AGENT].handle(UserMessage(CID, "运费多少钱", "wechat", OPENID, msg_id))
    try:
        busy = await wechat_says(worker, "运费多少钱", msg_id)  # WeChat's retry while the hold is renewed
        assert busy.status == 503
        keeper.cancel()  # the worker dies: nothing renews its hold any more
        await _expired(redis_url, f"{prefix}:conv:wechat:turn:{msg_id}:lock")  # WeChat's next retry comes 5 s later
        retry = await wechat_says(worker, "运费多少钱", msg_id)
        answer = open_reply(await retry.text()).get("Content")
        assert answer == "\n\n".join(e["text"] for e in stored if e["event"] == "bot" and e.get("text"))
        assert await (await wechat_says(worker, "运费多少钱", msg_id)).text() == "success"
        users, bots = await shopper_turns(worker)
        assert users == ["运费多少钱"] and "\n\n".join(bots) == answer  # stored once: the turn was not run again
    finally:
        await dead.close()


async def _expired(redis_url: str, key: str, within_s: float = 10.0) -> None:
    """Wait for a dead worker's hold to expire (1 s after its last renewal; later on a loaded machine)."""
    raw = aioredis.from_url(redis_url)
    try:
        deadline = time.monotonic() + within_s
        while await raw.exists(key):
            assert time.monotonic() < deadline, f"{key} never expired"
            await asyncio.sleep(0.05)
    finally:
        await raw.aclose()


async def test_wechats_retry_runs_the_turn_a_dead_worker_never_stored(make_client, fake_wechat, redis_url):
    prefix = f"test-{uuid4().hex[:12]}"
    worker = await make_client(shop.wechat_env(fake_wechat.url), redis_url, prefix)
    msg_id = "24000000000014201"
    dead = open_redis_stores(redis_url, prefix=f"{prefix}:", lock_ttl_s=0.5)
    hold = dead.trackers.lock(f"wechat:turn:{msg_id}")
    before = asyncio.all_tasks()
    await hold.__aenter__()
    [keeper] = asyncio.all_tasks() - before
    keeper.cancel()  # died before storing anything
    try:
        retry = await wechat_says(worker, "运费多少钱", msg_id)  # waits out the dead worker's hold
        answer = open_reply(await retry.text()).get("Content")
        users, bots = await shopper_turns(worker)
        assert users == ["运费多少钱"] and answer == "\n\n".join(bots) and answer
    finally:
        await dead.close()



async def test_a_late_wechat_answer_a_sweep_took_for_left_behind_is_sent_once(make_client, fake_wechat, redis_url):
    """Overload: a turn and its answer take longer than RECOVER_AFTER_S, so another worker's sweep takes the kept
    message for left behind while the worker that acknowledged it is still sending. The shopper gets it once."""
    prefix = f"test-{uuid4().hex[:12]}"
    env = shop.wechat_env(fake_wechat.url, WECHAT_REPLY_BUDGET_S="0.3")
    a, b = [await make_client(env, redis_url, prefix, name=name) for name in "ab"]
    busy = open_redis_stores(redis_url, prefix=f"{prefix}:")
    try:
        async with busy.trackers.lock(CID):  # the conversation is slow: a's turn waits past its reply budget
            first = await wechat_says(a, "运费多少钱", "24000000000014301")
            assert await first.text() == "success"  # kept; the answer is to follow by custom-send
        [(key, entry)] = await a.app[STORES].kv.scan(a.app[WECHAT].inbox.prefix)
    finally:
        await busy.close()
    await a.app[STORES].kv.set(key, {**entry, "at": entry["at"] - RECOVER_AFTER_S - 1})  # a minute on
    fake_wechat.fail("send", status=200, body={"errcode": 0, "errmsg": "ok"}, delay_s=1.5)  # a slow upstream
    await fake_wechat.wait_for(lambda: fake_wechat.sends(OPENID, delivered_only=False))  # a is sending
    await b.app[WECHAT].recover()  # b's sweep takes the message for left behind
    for _ in range(300):  # until both workers are idle
        if not any(len(w.app[WECHAT].serial) or len(w.app[WECHAT].tasks) for w in (a, b)):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # time for a second answer, if there were one
    users, bots = await shopper_turns(a)
    assert users == ["运费多少钱"] and bots
    assert fake_wechat.texts(OPENID) == ["\n\n".join(bots)]  # sent once
    assert await a.app[STORES].kv.scan(a.app[WECHAT].inbox.prefix) == []



async def test_a_wechat_delivery_that_could_not_keep_its_message_leaves_the_answer_to_the_retry(
        make_client, fake_wechat, redis_url, monkeypatch):
    """The turn started but the message could not be kept (the store failed right then): 503, and WeChat's retry,
    not `success` with nothing, gets the answer of the turn that went on and was stored."""
    prefix = f"test-{uuid4().hex[:12]}"
    worker = await make_client(shop.wechat_env(fake_wechat.url, WECHAT_REPLY_BUDGET_S="0.3"), redis_url, prefix)
    inbox, msg_id = worker.app[WECHAT].inbox, "24000000000014401"

    async def store_fails(*args, **kwargs):
        raise RedisConnectionError("Redis went away")

    busy = open_redis_stores(redis_url, prefix=f"{prefix}:")
    try:
        async with busy.trackers.lock(CID):  # the turn waits past the reply budget
            monkeypatch.setattr(inbox, "keep", store_fails)
            first = await wechat_says(worker, "运费多少钱", msg_id)
            assert first.status == 503  # not kept: WeChat must send it again
            monkeypatch.undo()
    finally:
        await busy.close()
    channel = worker.app[WECHAT]  # the retry is not slow: on a busy machine 0.3 s may pass
    channel.settings = channel.settings.model_copy(update={"reply_budget_s": 4.0})
    for _ in range(300):  # the turn that had started goes on and is stored
        if (await shopper_turns(worker))[1]:
            break
        await asyncio.sleep(0.02)
    retry = await wechat_says(worker, "运费多少钱", msg_id)
    answer = open_reply(await retry.text()).get("Content")
    users, bots = await shopper_turns(worker)
    assert users == ["运费多少钱"] and answer == "\n\n".join(bots) and answer  # stored once, answered
    assert await (await wechat_says(worker, "运费多少钱", msg_id)).text() == "success"
    await asyncio.sleep(0.3)
    assert fake_wechat.sends() == []  # once: by the passive reply


async def test_a_wechat_answer_the_store_failed_to_read_is_given_to_the_retry(
        make_client, fake_wechat, redis_url, monkeypatch):
    """The turn ran and was stored, then the store failed while the passive reply was read (the soak's Redis
    restart): 503 before the MsgId is marked answered, so WeChat's retry gets the answer, not `success`."""
    worker = await make_client(shop.wechat_env(fake_wechat.url), redis_url, f"test-{uuid4().hex[:12]}")
    channel, msg_id = worker.app[WECHAT], "24000000000014402"
    shown = channel._shown

    async def store_fails(*args, **kwargs):
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(channel, "_shown", store_fails)
    assert (await wechat_says(worker, "运费多少钱", msg_id)).status == 503
    monkeypatch.setattr(channel, "_shown", shown)
    retry = await wechat_says(worker, "运费多少钱", msg_id)
    answer = open_reply(await retry.text()).get("Content")
    users, bots = await shopper_turns(worker)
    assert users == ["运费多少钱"] and answer == "\n\n".join(bots) and answer  # stored once, answered
    assert await (await wechat_says(worker, "运费多少钱", msg_id)).text() == "success"


# -- Messenger: messages a crashed worker acknowledged, swept by two workers at once ---------------------------

CONVERSATIONS = {"14501": ["hello", "how long does shipping take", "thanks"],
                 "14502": ["what payment methods do you accept", "hello", "bye"],
                 "14503": ["thanks", "how long does shipping take", "hello"]}


async def test_two_workers_sweeping_answer_each_left_behind_message_once_and_in_order(make_client, fake_graph,
                                                                                     redis_url):
    prefix = f"test-{uuid4().hex[:12]}"
    env = shop.messenger_env(fake_graph.url, MESSENGER_NOTICE_GRACE_S="0.2")
    workers = [await make_client(env, redis_url, prefix, name=name) for name in "ab"]
    channel, trackers = workers[0].app[MESSENGER], workers[0].app[STORES].trackers
    # What a crashed worker left: each message acknowledged (kept, mid marked), none answered. The mids sort
    # against the order sent, so only the order of acknowledgement can put them right.
    acknowledged = time.time() - RECOVER_AFTER_S - 10
    for psid, texts in CONVERSATIONS.items():
        for n, text in enumerate(texts):
            mid = f"m_{psid}_{'zyx'[n]}"
            item = {"sender": {"id": psid}, "recipient": {"id": "111"}, "timestamp": int(time.time() * 1000),
                    "message": {"mid": mid, "text": text}}
            await channel.inbox.keep(f"messenger:{psid}", mid, asdict(Incoming("message", psid, "111", item)))
            await trackers.claim_message_id(f"messenger:in:{mid}", 3600)
            [(key, entry)] = await workers[0].app[STORES].kv.scan(f"{channel.inbox.prefix}messenger:{psid}/{mid}")
            await workers[0].app[STORES].kv.set(key, {**entry, "at": acknowledged + n})

    await asyncio.gather(*(worker.app[MESSENGER].recover() for worker in workers))
    await fake_graph.wait_for(lambda: all(fake_graph.messages(psid) for psid in CONVERSATIONS))
    for _ in range(500):  # until both workers are idle
        if not any(len(w.app[MESSENGER].serial) or len(w.app[MESSENGER].tasks) for w in workers):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # time for a second answer, if there were one

    for psid, texts in CONVERSATIONS.items():
        users, bots = await shopper_turns(workers[1], f"messenger:{psid}")
        assert users == texts  # stored once each, in the order sent
        assert fake_graph.texts(psid) == bots  # every answer sent once, in order
    assert await workers[1].app[STORES].kv.scan(channel.inbox.prefix) == []
