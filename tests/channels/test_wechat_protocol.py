"""WeChat protocol pieces against docs/channels.md Appendix A and §1.2 vectors: signatures, AES, XML, settings."""

from __future__ import annotations

import base64

import pytest

from bot.channels.settings import ConfigError, load_settings
from bot.channels.wechat import WeChatChannel, xml
from bot.channels.wechat.crypto import DecryptError, MessageCipher, signature, signature_ok
from bot.channels.wechat.inbound import normalise
from tests.channels.conftest import WX_AES_KEY, WX_APPID, WX_TOKEN
from tests.channels.vectors import INBOUND_ENCRYPT, INBOUND_PLAIN, REPLY_ENCRYPT, REPLY_PLAIN


def test_signatures_match_the_official_wechatpy_and_appendix_vectors():
    assert signature("AAAAA", "1714037059", "486452656") == "899cf89e464efb63f54ddac96b0a0a235f53aa78"
    assert signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    assert signature(WX_TOKEN, "1700000000", "1357924680") == "de54333f03a2e4afd2dac01317f8302e7c10f0bd"
    assert signature(WX_TOKEN, "1700000000", "1357924680", INBOUND_ENCRYPT) == \
        "a47774789d900793bf8a500ae628245bbc332934"
    assert signature_ok("de54333f03a2e4afd2dac01317f8302e7c10f0bd", "DE54333F03A2E4AFD2DAC01317F8302E7C10F0BD")
    assert not signature_ok("de54333f03a2e4afd2dac01317f8302e7c10f0bd", "de54333f03a2e4afd2dac01317f8302e7c10f0be")
    assert not signature_ok("de54333f03a2e4afd2dac01317f8302e7c10f0bd", None)


def test_appendix_a_decrypts_and_the_reply_encrypts_to_the_exact_vector():
    cipher = MessageCipher(WX_AES_KEY, WX_APPID)
    assert cipher.decrypt(INBOUND_ENCRYPT) == INBOUND_PLAIN
    assert cipher.encrypt(INBOUND_PLAIN, b"0123456789abcdef") == INBOUND_ENCRYPT
    reply = cipher.encrypt(REPLY_PLAIN, b"fedcba9876543210")
    assert reply == REPLY_ENCRYPT
    assert signature(WX_TOKEN, "1700000000", "1357924680", reply) == "bacdb03a60ca67195596b990176715c97f62a3a9"
    assert "key" not in repr(cipher).lower().replace("<key hidden>", "")


def test_wecom_vector_from_wechatpy_round_trips():
    cipher = MessageCipher("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
    assert cipher.decrypt(cipher.encrypt("<xml>你好 ]]> 😀</xml>")) == "<xml>你好 ]]> 😀</xml>"


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda e: e[:-4] + "AAA=", id="tampered-last-block"),
    pytest.param(lambda e: "not*base64", id="not-base64"),
    pytest.param(lambda e: base64.b64encode(base64.b64decode(e)[:-16]).decode(), id="truncated"),
    pytest.param(lambda e: "", id="empty"),
])
def test_bad_ciphertexts_are_rejected(mutate):
    with pytest.raises(DecryptError):
        MessageCipher(WX_AES_KEY, WX_APPID).decrypt(mutate(INBOUND_ENCRYPT))


def test_another_appid_is_rejected_and_bad_padding_is_caught():
    with pytest.raises(DecryptError, match="not addressed"):
        MessageCipher(WX_AES_KEY, "wx_other_app_id___").decrypt(INBOUND_ENCRYPT)
    # a valid AES block whose last byte is not valid 32-byte PKCS#7 (pad 33)
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(WX_AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    bad = base64.b64encode(enc.update(b"x" * 31 + bytes([33])) + enc.finalize()).decode()
    with pytest.raises(DecryptError, match="padding"):
        MessageCipher(WX_AES_KEY, WX_APPID).decrypt(bad)


def test_xml_parse_is_strict_and_case_tolerant():
    fields = xml.parse(INBOUND_PLAIN.replace("MsgId", "MsgID").encode(), 65536)
    assert fields.get("msgid") == "24000000000000001" and fields.get("Content") == "你好，我要退货"
    assert "24000000000000001" not in repr(fields)
    with pytest.raises(xml.XMLError, match="larger"):
        xml.parse(b"<xml>" + b"a" * 100 + b"</xml>", 50)
    with pytest.raises(xml.XMLError, match="DOCTYPE"):
        xml.parse(b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>', 65536)
    with pytest.raises(xml.XMLError, match="well-formed"):
        xml.parse(b'{"json": true}', 65536)
    with pytest.raises(xml.XMLError, match="root"):
        xml.parse(b"<html><body/></html>", 65536)


def test_reply_text_cannot_break_out_of_cdata():
    evil = "a]]><MsgType>news</MsgType><![CDATA[b\x00\x08\x1b\ud800ok\ufffe"
    rendered = xml.text_reply("oUSER", "gh_x", 1700000001, evil)
    fields = xml.parse(rendered.encode(), 65536)
    assert fields.get("MsgType") == "text"
    assert fields.get("Content") == "a]]><MsgType>news</MsgType><![CDATA[bok"


def test_inbound_normalisation_of_media_events_and_unknowns():
    def push(body: str):
        return xml.parse(f"<xml><ToUserName>gh_1</ToUserName><FromUserName>oU</FromUserName>"
                         f"<CreateTime>1700000000</CreateTime>{body}</xml>".encode(), 65536)

    image = normalise(push("<MsgType>image</MsgType><PicUrl>http://p/1.jpg</PicUrl><MediaId>M1</MediaId>"
                           "<MsgId>9</MsgId><Extra>ignored</Extra>"))
    assert image.text == "[图片]" and image.metadata["media"] == {"type": "image", "url": "http://p/1.jpg",
                                                                 "media_id": "M1"}
    assert image.dedupe_key == "9" and image.opens == "message"
    voice = normalise(push("<MsgType>voice</MsgType><MediaId>V</MediaId><Format>amr</Format>"
                           "<Recognition>我要退货</Recognition><MsgID>10</MsgID>"), "en")
    assert voice.text == "我要退货" and voice.dedupe_key == "10"
    subscribe = normalise(push("<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_123"
                               "</EventKey>"))
    assert subscribe.text == "/greet" and subscribe.metadata["scene"] == "123"
    assert subscribe.dedupe_key == "oU:1700000000:subscribe" and subscribe.opens == "event"
    click = normalise(push("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>/order_status</EventKey>"))
    assert click.text == "/order_status"
    assert normalise(push("<MsgType>event</MsgType><Event>unsubscribe</Event>")).text is None
    assert normalise(push("<MsgType>miniprogrampage</MsgType><MsgId>11</MsgId>")) is None
    assert normalise(push("<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event>")) is None


def test_settings_come_from_the_environment_and_never_show_secrets():
    assert load_settings(WeChatChannel, None, {}) is None
    env = {"WECHAT_TOKEN": "tok-secret", "WECHAT_APPID": WX_APPID, "WECHAT_APPSECRET": "app-secret-xyz",
           "WECHAT_ENCODING_AES_KEY": WX_AES_KEY, "WECHAT_REPLY_BUDGET_S": "0.2"}
    settings = load_settings(WeChatChannel, None, env)
    assert settings.mode == "safe" and settings.reply_budget_s == 0.2
    assert settings.api_base == "https://api.weixin.qq.com"
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "tok-secret" not in text and "app-secret-xyz" not in text and WX_AES_KEY not in text
    with pytest.raises(ConfigError, match="WECHAT_APPSECRET") as partly:
        load_settings(WeChatChannel, None, {"WECHAT_TOKEN": "tok-secret", "WECHAT_APPID": "wx1"})
    assert "tok-secret" not in str(partly.value)
    with pytest.raises(ConfigError, match="ENCODING_AES_KEY") as no_key:
        load_settings(WeChatChannel, None, {k: v for k, v in env.items() if k != "WECHAT_ENCODING_AES_KEY"})
    assert "tok-secret" not in str(no_key.value)
    with pytest.raises(ConfigError) as bad_key:
        load_settings(WeChatChannel, None, {**env, "WECHAT_ENCODING_AES_KEY": "short-secret-key"})
    assert "short-secret-key" not in str(bad_key.value)
    plain = load_settings(WeChatChannel, None, {**env, "WECHAT_MODE": "plaintext", "WECHAT_ENCODING_AES_KEY": ""})
    assert plain.mode == "plaintext" and plain.encoding_aes_key is None
    with pytest.raises(ConfigError, match="WECHAT_MODE"):
        load_settings(WeChatChannel, None, {**env, "WECHAT_MODE": "compat"})
