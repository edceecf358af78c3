"""One place reads every channel's settings: `channels.<name>` in endpoints.yml and `<NAME>_*` environment
variables, env winning; a channel that is not configured is not mounted, a partly configured one is a one-line
error that names keys and variables but never a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.channels.messenger import MessengerChannel
from bot.channels.registry import CHANNELS, mount_channels
from bot.channels.rest import RestChannel
from bot.channels.settings import ConfigError, load_settings
from bot.channels.wechat import WECHAT, WeChatChannel
from bot.channels.widget import WIDGET, WidgetChannel
from bot.endpoints import load_endpoints
from bot.formats.yaml_io import DataError
from tests.channels.conftest import WX_AES_KEY, WX_APPID

SECRET = "app-secret-do-not-show"


def test_endpoints_yml_and_environment_both_configure_a_channel_and_the_environment_wins():
    section = {"token": "${not used}", "appid": WX_APPID, "appsecret": SECRET, "encoding_aes_key": WX_AES_KEY,
               "reply_budget_s": 1.5, "kf_account": "yml@gh"}
    from_yml = load_settings(WeChatChannel, section, {})
    assert from_yml.appid == WX_APPID and from_yml.reply_budget_s == 1.5 and from_yml.kf_account == "yml@gh"
    both = load_settings(WeChatChannel, section, {"WECHAT_REPLY_BUDGET_S": "0.5", "WECHAT_TOKEN": "env-token"})
    assert both.reply_budget_s == 0.5 and both.token.get_secret_value() == "env-token"
    assert both.kf_account == "yml@gh", "what the environment does not set stays as endpoints.yml says"
    only_env = load_settings(MessengerChannel, None, {"MESSENGER_VERIFY_TOKEN": "v", "MESSENGER_APP_SECRET": "s",
                                                      "MESSENGER_PAGE_ACCESS_TOKEN": "p"})
    assert only_env.graph_api_version == "v25.0"


def test_partly_configured_is_one_line_naming_keys_and_variables_never_values():
    with pytest.raises(ConfigError) as from_yml:
        load_settings(WeChatChannel, {"appid": WX_APPID, "appsecret": SECRET}, {})
    message = str(from_yml.value)
    assert "\n" not in message and SECRET not in message and WX_APPID not in message
    assert "WECHAT_TOKEN" in message and "channels.wechat.token" in message and "appsecret" not in message
    with pytest.raises(ConfigError, match="MESSENGER_PAGE_ACCESS_TOKEN") as from_env:
        load_settings(MessengerChannel, None, {"MESSENGER_APP_SECRET": SECRET, "MESSENGER_VERIFY_TOKEN": "v"})
    assert SECRET not in str(from_env.value)
    with pytest.raises(ConfigError, match="WECHAT_APPSECRET"):  # a section at all means "configure it"
        load_settings(WeChatChannel, {"reply_budget_s": 1.0}, {})
    with pytest.raises(ConfigError) as bad_value:
        load_settings(WeChatChannel, {"token": SECRET, "appid": WX_APPID, "appsecret": SECRET,
                                      "encoding_aes_key": WX_AES_KEY, "mode": "compat"}, {})
    assert "channels.wechat.mode" in str(bad_value.value) and "compat" not in str(bad_value.value)


def test_channels_without_required_settings_are_always_on_and_read_lists_from_the_environment():
    assert load_settings(WeChatChannel, None, {}) is None, "not configured at all: not mounted"
    assert load_settings(RestChannel, None, {}) is not None
    widget = load_settings(WidgetChannel, {"max_text_chars": 500},
                           {"WIDGET_ALLOWED_ORIGINS": "https://a.example, https://B.example/",
                            "WIDGET_PAYLOADS": '{"handoff": "/request_human"}'})
    assert widget.allowed_origins == ["https://a.example", "https://b.example"] and widget.max_text_chars == 500
    assert widget.payloads.handoff == "/request_human"
    with pytest.raises(ConfigError, match="WIDGET_ALLOWED_ORIGINS"):
        load_settings(WidgetChannel, None, {"WIDGET_ALLOWED_ORIGINS": "*"})
    with pytest.raises(ConfigError, match="WIDGET_MAX_TEXT_CHARS"):
        load_settings(WidgetChannel, None, {"WIDGET_MAX_TEXT_CHARS": "many"})


def test_the_registry_mounts_what_is_configured_and_refuses_what_is_no_channel():
    app = web.Application()
    mounted = mount_channels(app, {"wechat": {"token": "t", "appid": WX_APPID, "appsecret": SECRET,
                                              "mode": "plaintext"}}, environ={})
    assert [c.name for c in mounted] == ["rest", "widget", "wechat"]
    assert app[WECHAT] is mounted[2] and app[WIDGET] is mounted[1] and SECRET not in repr(mounted)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/webhooks/rest/webhook", "/api/widget/ws", "/webhooks/wechat"} <= paths
    assert "/webhooks/messenger" not in paths
    with pytest.raises(ConfigError, match="wechta"):
        mount_channels(web.Application(), {"wechta": {}}, environ={})
    assert len({c.name for c in CHANNELS}) == len(CHANNELS)


def test_the_old_top_level_widget_key_is_refused_with_where_it_went(tmp_path: Path):
    old = tmp_path / "endpoints.yml"
    old.write_text("widget:\n  allowed_origins: [https://shop.example]\n", encoding="utf-8")
    with pytest.raises(DataError, match="under `channels:`"):
        load_endpoints(old)
