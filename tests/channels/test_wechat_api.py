"""WeChat server API client against the fake WeChat server: token cache, refresh-once, retries (W14–W19)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.channels.wechat.api import DeliveryUncertain, WeChatAPI, WeChatAPIError
from bot.channels.wechat.config import WeChatSettings
from tests.channels.conftest import WX_AES_KEY, WX_APPID


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(api_base: str, **extra) -> WeChatSettings:
    values = {"retry_base_s": 0.001, "http_timeout_s": 10.0, **extra}
    return WeChatSettings(token="t", appid=WX_APPID, appsecret="very-secret-appsecret", encoding_aes_key=WX_AES_KEY,
                          api_base=api_base, **values)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_token_is_fetched_once_for_concurrent_callers_from_the_stable_endpoint(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    tokens = await asyncio.gather(*(api.tokens.get() for _ in range(10)))
    assert set(tokens) == {"T1"}
    [call] = fake_wechat.token_calls()
    assert call.path == "/cgi-bin/stable_token"
    assert call.body == {"grant_type": "client_credential", "appid": WX_APPID, "secret": "very-secret-appsecret",
                         "force_refresh": False}


async def test_token_is_refreshed_five_minutes_before_it_expires(fake_wechat, session):
    clock = Clock()
    fake_wechat.expires_in = 7200
    api = WeChatAPI(settings(fake_wechat.url), session, clock)
    assert await api.tokens.get() == "T1"
    clock.now += 7200 - 301
    assert await api.tokens.get() == "T1" and len(fake_wechat.token_calls()) == 1
    clock.now += 2  # now less than 300 s left
    fake_wechat.expire_token()  # the platform rotates it too
    assert await api.tokens.get() == "T2" and len(fake_wechat.token_calls()) == 2


async def test_classic_endpoint_when_configured(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url, token_endpoint="classic"), session, Clock())
    await api.send_text("oU", "hi")
    assert fake_wechat.calls[0].path == "/cgi-bin/token" and fake_wechat.texts() == ["hi"]


async def test_expired_token_is_refreshed_once_and_the_send_retried_once(fake_wechat, session, logs):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    await api.send_text("oU", "first")
    fake_wechat.expire_token()
    await asyncio.gather(api.send_text("oU", "second"), api.send_text("oU", "third"))
    assert sorted(fake_wechat.texts()) == ["first", "second", "third"]
    assert len(fake_wechat.token_calls()) == 2, "one refresh for both failures"
    assert [c.query["access_token"] for c in fake_wechat.sends(delivered_only=False)][:1] == ["T1"]
    assert "very-secret-appsecret" not in logs.text and "T2" not in logs.text


async def test_a_token_that_stays_invalid_is_not_retried_forever(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    fake_wechat.fail("send", times=5, body={"errcode": 40001, "errmsg": "invalid credential"})
    with pytest.raises(WeChatAPIError) as failed:
        await api.send_text("oU", "x")
    assert failed.value.code == 40001
    assert len(fake_wechat.sends(delivered_only=False)) == 2  # the send, one retry after one refresh


async def test_stable_token_forces_a_new_one_when_it_hands_back_the_rejected_token(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    await api.tokens.get()
    api.tokens.invalidate("T1")
    assert await api.tokens.get() == "T2"  # normal mode returned T1 again, then force_refresh
    assert [c.body["force_refresh"] for c in fake_wechat.token_calls()] == [False, False, True]


async def test_busy_and_5xx_are_retried_with_a_bound(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    fake_wechat.fail("send", times=1, body={"errcode": -1, "errmsg": "system busy"})
    fake_wechat.fail("send", times=1, status=502)
    await api.send_text("oU", "eventually")
    assert fake_wechat.texts() == ["eventually"] and len(fake_wechat.sends(delivered_only=False)) == 3
    fake_wechat.fail("send", times=10, status=500)
    with pytest.raises(WeChatAPIError):
        await api.send_text("oU", "never")
    assert len(fake_wechat.sends(delivered_only=False)) == 3 + 3  # send_attempts = 3


async def test_quota_errors_are_not_retried(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    for code in (45047, 45015):
        fake_wechat.fail("send", body={"errcode": code, "errmsg": "limit"})
        with pytest.raises(WeChatAPIError) as refused:
            await api.send_text("oU", "x")
        assert refused.value.code == code
    assert len(fake_wechat.sends(delivered_only=False)) == 2


async def test_a_timeout_is_not_retried_because_the_message_may_have_arrived(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url, http_timeout_s=0.2), session, Clock())
    await api.tokens.get()
    fake_wechat.fail("send", delay_s=0.5, body={"errcode": 0})
    with pytest.raises(DeliveryUncertain):
        await api.send_text("oU", "slow")
    assert len(fake_wechat.sends(delivered_only=False)) == 1


async def test_typing_is_best_effort_and_the_kf_account_and_utf8_are_sent(fake_wechat, session):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    fake_wechat.fail("typing", body={"errcode": 45080, "errmsg": "no recent interaction"})
    await api.typing("oU")  # does not raise
    await api.send_text("oU", "您好", kf_account="li@gh_0123456789ab")
    send = fake_wechat.sends()[0]
    assert send.body == {"touser": "oU", "msgtype": "text", "text": {"content": "您好"},
                         "customservice": {"kf_account": "li@gh_0123456789ab"}}
    typing = next(c for c in fake_wechat.calls if c.path.endswith("/typing"))
    assert typing.body == {"touser": "oU", "command": "Typing"}


async def test_ip_whitelist_error_is_explained_without_secrets(fake_wechat, session, logs):
    api = WeChatAPI(settings(fake_wechat.url), session, Clock())
    fake_wechat.fail("token", body={"errcode": 40164, "errmsg": "invalid ip 1.2.3.4, not in whitelist"})
    with pytest.raises(WeChatAPIError) as failed:
        await api.send_text("oU", "x")
    assert "whitelist" in logs.text and "very-secret-appsecret" not in logs.text + str(failed.value)
