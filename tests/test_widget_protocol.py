"""The chat bubble's pieces without a model: frames in and out, session tokens, limits, upload sniffing, settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bot.channels.settings import ConfigError, load_settings
from bot.channels.widget import WidgetChannel, WidgetSettings, protocol
from bot.channels.widget.protocol import FrameError, Hello, Outgoing, Ping, Read, Typing, parse_client_frame
from bot.channels.widget.sessions import KEY_PREFIX, Sessions, bearer, token_key
from bot.channels.widget.uploads import safe_name, sniff
from bot.dialogue import events as ev
from bot.endpoints import load_endpoints
from bot.language import detect_language
from bot.stores.buckets import LocalBuckets, TokenBucket
from bot.stores.sqlite import open_sqlite_stores
from handoff.shopper import rating_request

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = WidgetSettings()


def parse(frame: object) -> object:
    return parse_client_frame(frame if isinstance(frame, str) else json.dumps(frame), SETTINGS)


def code_of(frame: object) -> str:
    with pytest.raises(FrameError) as info:
        parse(frame)
    return info.value.code


# -- client frames ---------------------------------------------------------------------------------------------

def test_client_frames_parse_into_typed_frames():
    assert parse({"type": "hello", "token": "t" * 43, "last_seq": 41}) == Hello("t" * 43, 41)
    assert parse({"type": "message", "client_msg_id": "uuid-0001", "text": "运费多少？"}) == \
        Outgoing("uuid-0001", "运费多少？")
    assert parse({"type": "quick_reply", "client_msg_id": "uuid-0002", "payload": "/order_status",
                  "title": "Track my order"}) == Outgoing("uuid-0002", "/order_status", "Track my order")
    assert parse({"type": "typing", "state": "on"}) == Typing(True)
    assert parse({"type": "read", "seq": 42}) == Read(42)
    assert parse({"type": "ping"}) == Ping()


def test_panel_buttons_become_the_configured_payloads():
    handoff = parse({"type": "handoff_request", "client_msg_id": "uuid-0003", "title": "Talk to a person"})
    assert handoff == Outgoing("uuid-0003", "/human_handoff", "Talk to a person")
    cancel = parse({"type": "handoff_cancel", "client_msg_id": "uuid-0004"})
    assert isinstance(cancel, Outgoing) and cancel.text == "/cancel_handoff"
    rating = parse({"type": "csat", "client_msg_id": "uuid-0005", "score": 4})
    assert isinstance(rating, Outgoing) and rating.text == '/csat{"score": 4}' and rating.title == "★★★★"
    renamed = WidgetSettings(payloads={"handoff": "/request_human"})
    frame = parse_client_frame(json.dumps({"type": "handoff_request", "client_msg_id": "uuid-0006"}), renamed)
    assert isinstance(frame, Outgoing) and frame.text == "/request_human"


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "bad_frame"),
    ("[1, 2]", "bad_frame"),
    ({"no": "type"}, "bad_frame"),
    ({"type": "shutdown"}, "unknown_type"),
    ({"type": "message", "client_msg_id": "short", "text": "hi"}, "bad_frame"),
    ({"type": "message", "client_msg_id": "uuid-0001"}, "bad_frame"),
    ({"type": "message", "client_msg_id": "uuid-0001", "text": "   "}, "bad_frame"),
    ({"type": "message", "client_msg_id": "uuid-0001", "text": 5}, "bad_frame"),
    ({"type": "message", "client_msg_id": "uuid-0001", "text": "x" * 2001}, "too_large"),
    ({"type": "message", "client_msg_id": "uuid-0001", "attachments": ["../../etc/passwd"]}, "bad_frame"),
    ({"type": "csat", "client_msg_id": "uuid-0001", "score": 6}, "bad_frame"),
    ({"type": "csat", "client_msg_id": "uuid-0001", "score": True}, "bad_frame"),
    ({"type": "read", "seq": -1}, "bad_frame"),
    ({"type": "typing", "state": "maybe"}, "bad_frame"),
])
def test_bad_frames_get_an_error_code(frame, code):
    assert code_of(frame) == code


def test_oversize_frame_is_refused_before_parsing():
    big = json.dumps({"type": "message", "client_msg_id": "uuid-0001", "text": "运" * 6000})
    assert len(big.encode()) > SETTINGS.max_frame_bytes
    assert code_of(big) == "too_large"


def test_error_keeps_the_client_msg_id_so_the_panel_can_mark_that_message():
    with pytest.raises(FrameError) as info:
        parse({"type": "message", "client_msg_id": "uuid-0009", "text": ""})
    assert info.value.client_msg_id == "uuid-0009"


def test_attachment_only_message_needs_no_text():
    frame = parse({"type": "message", "client_msg_id": "uuid-0001", "attachments": ["att_" + "a" * 24] * 2})
    assert isinstance(frame, Outgoing) and frame.attachments == ("att_" + "a" * 24,) and frame.text == ""


# -- server frames ---------------------------------------------------------------------------------------------

def stored(event: dict, seq: int) -> dict:
    return {**event, "seq": seq}


def test_user_and_bot_events_render_as_messages_with_quick_replies():
    user = stored(ev.user("/human_handoff", {"intent": {"name": "human_handoff"}}, "widget", "uuid-1",
                          {"title": "Talk to a person"}), 3)
    frame = protocol.render_event(user)
    assert frame == {"type": "message", "seq": 3, "ts": user["timestamp"], "role": "user",
                     "text": "Talk to a person", "client_msg_id": "uuid-1"}
    bot = stored(ev.bot("Sorry?", {"buttons": [{"title": "转人工客服", "payload": "/human_handoff"}]}), 4)
    frame = protocol.render_event(bot)
    assert frame["role"] == "bot" and frame["quick_replies"] == [{"title": "转人工客服", "payload": "/human_handoff"}]


def test_private_and_internal_data_never_reach_the_shopper():
    note = stored({"event": ev.AGENT_NOTE, "text": "customer is rude", "agent": "li"}, 5)
    assert protocol.render_event(note) is None
    requested = stored(ev.handoff_requested("low_faq_score", [{"text": "secret guess", "score": 0.2}], "en"), 6)
    assert protocol.render_event(requested) == {"type": "handoff", "seq": 6, "ts": requested["timestamp"],
                                                "state": "requested"}
    user = protocol.render_event(stored(ev.user("hi", {"intent": {"name": "greet"}}), 7))
    assert "parse_data" not in user and "metadata" not in user
    for kind in ("action", "slot", "session_started"):
        assert protocol.render_event({"event": kind, "seq": 1}) is None
    assert protocol.render_event({"event": "typing", "role": "user", "on": True}) is None


def test_frames_name_the_frame_before_them_so_a_panel_sees_when_one_is_missing():
    events = [stored(e, n) for n, e in enumerate([
        ev.user("hi", {"intent": {"name": "greet"}}), ev.action("utter_greet"), ev.bot("Hello!"),
        ev.slot("language", "en"), {"event": ev.AGENT_NOTE, "text": "private"}, ev.bot("Anything else?")], start=1)]
    frames = protocol.frames(events)
    assert [(f["seq"], f["prev_seq"]) for f in frames] == [(1, 0), (3, 1), (6, 3)]  # invisible ones skipped
    assert [(f["seq"], f["prev_seq"]) for f in protocol.frames(events, after_seq=4)] == [(6, 3)]
    assert protocol.last_shown(events, 5) == 3 and protocol.last_shown(events, 0) == 0


def test_handoff_agent_and_typing_frames():
    queued = protocol.render_event(stored({"event": ev.QUEUED, "position": 3, "eta_s": 120}, 8))
    assert (queued["state"], queued["queue_position"], queued["eta_s"]) == ("queued", 3, 120)
    assigned = protocol.render_event(stored({"event": ev.AGENT_ASSIGNED, "agent": "li01", "agent_name": "Li"}, 9))
    assert assigned["state"] == "assigned" and assigned["agent"] == {"name": "Li"}
    said = protocol.render_event(stored({"event": ev.AGENT_MESSAGE, "text": "Hi!", "agent": "li01",
                                         "agent_name": "Li"}, 10))
    assert said["role"] == "agent" and said["agent"] == {"name": "Li"} and "li01" not in json.dumps(said)
    offline = protocol.render_event(stored({"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed",
                                            "next_open": "2026-11-26T09:00:00+08:00"}, 11))
    assert offline["state"] == "unavailable" and offline["next_open"].startswith("2026-11-26")
    closed = protocol.render_event(stored({"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed", "timezone":
                                           "Asia/Shanghai", "next_open": "2026-11-26T09:00:00+08:00"}, 12))
    assert closed["timezone"] == "Asia/Shanghai"  # "back at 09:00" is said in the shop's time zone, named
    typing = protocol.render_event({"event": "typing", "role": "agent", "on": True, "agent_name": "Li"})
    assert typing == {"type": "typing", "role": "agent", "state": "on", "agent": {"name": "Li"}}


def test_conversation_state_says_when_a_rating_is_wanted():
    events = [ev.handoff_requested("explicit_request", []), {"event": ev.QUEUED, "position": 1},
              {"event": ev.AGENT_ASSIGNED, "agent_name": "Li"}]
    state = protocol.conversation_state(events)
    assert state == {"handoff": "assigned", "agent": {"name": "Li"}, "csat_pending": False, "details": {}}
    events.append({"event": ev.HANDOFF_ENDED, "resolution": "resolved"})
    # the end alone asks nothing (ask_rating: false): no stars until the bot's rating request
    assert protocol.conversation_state(events) == {"handoff": "ended", "agent": None, "csat_pending": False,
                                                   "details": {}}
    events.append(rating_request("en"))
    assert protocol.conversation_state(events) == {"handoff": "ended", "agent": None, "csat_pending": True,
                                                   "details": {}}
    rendered = protocol.render_event({**events[-1], "seq": 5})
    assert rendered["rating"] is True and [r["payload"] for r in rendered["quick_replies"]] == [
        f'/csat{{"score": {n}}}' for n in range(1, 6)]
    events.append(ev.user('/csat{"score": 5}'))
    assert protocol.conversation_state(events)["csat_pending"] is False


# -- session tokens --------------------------------------------------------------------------------------------

async def test_tokens_are_random_stored_hashed_and_never_someone_elses(tmp_path):
    stores = open_sqlite_stores(tmp_path / "kefu.db")
    now = [1000.0]
    sessions = Sessions(stores.kv, ttl_s=3600, clock=lambda: now[0])
    try:
        a, b = await sessions.issue(), await sessions.issue()
        assert a.token != b.token and a.conversation_id != b.conversation_id
        assert a.conversation_id.startswith("web:") and len(a.token) == 43
        keys = [k for k, _ in await stores.kv.scan(KEY_PREFIX)]
        assert token_key(a.token) in keys and KEY_PREFIX + hashlib.sha256(a.token.encode()).hexdigest() in keys
        assert not any(a.token in k or a.token in json.dumps(v) for k, v in await stores.kv.scan(""))
        assert (await sessions.resolve(a.token)).conversation_id == a.conversation_id
        for garbled in (None, "", "x", a.token[:-1] + ("A" if a.token[-1] != "A" else "B"), a.token + "=",
                        "../" + a.token[3:], 42, {"token": a.token}):
            assert await sessions.resolve(garbled) is None
        fresh = await sessions.open("not-a-token")
        assert fresh.new and fresh.conversation_id not in (a.conversation_id, b.conversation_id)
        now[0] += 2000  # past half its life: the expiry slides forward
        assert await sessions.resolve(a.token) is not None
        now[0] += 3000
        assert await sessions.resolve(a.token) is not None
        now[0] += 3601  # expired: gone
        assert await sessions.resolve(a.token) is None
        assert await stores.kv.get(token_key(a.token)) is None
    finally:
        await stores.close()


def test_bearer_header():
    assert bearer("Bearer abc") == "abc"
    assert bearer("Basic abc") is None and bearer(None) is None and bearer("Bearer ") is None


# -- limits, uploads, settings ---------------------------------------------------------------------------------

def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(per_second=1.0, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == pytest.approx(1.0)  # refused: a second until the next token
    now[0] = 0.75
    assert bucket.take() == pytest.approx(0.25)  # a refusal took nothing
    now[0] = 1.0
    assert bucket.take() == 0 and bucket.take() > 0
    buckets = LocalBuckets(max_buckets=2, clock=lambda: now[0])
    assert buckets.take("a", 1.0, 1) == 0 and buckets.take("a", 1.0, 1) > 0 and buckets.take("b", 1.0, 1) == 0
    buckets.take("c", 1.0, 1)  # "a" is forgotten (least recently used)
    assert buckets.take("a", 1.0, 1) == 0


def test_uploads_are_typed_by_their_bytes_and_named_safely():
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"GIF89a..") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"<html><script>") is None and sniff(b"MZ\x90\x00") is None
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\发票.pdf") == "发票.pdf"
    assert safe_name("a\u202eb\x00c.png") == "abc.png"
    assert safe_name("..%2F..%2F%E6%94%B6%E6%8D%AE.png") == "收据.png"
    assert safe_name("") == "file" and safe_name(".htaccess") == "htaccess"


def test_widget_settings_are_validated():
    settings = WidgetSettings(allowed_origins=["HTTPS://Shop.Example/", "http://[::1]:8080"])
    assert settings.allowed_origins == ["https://shop.example", "http://[::1]:8080"]
    for bad in (["*"], ["https://shop.example/path"], ["shop.example"], ["ftp://shop.example"]):
        with pytest.raises(ValueError, match="allowed_origins"):
            WidgetSettings(allowed_origins=bad)
    with pytest.raises(ValueError, match="upload_types"):
        WidgetSettings(upload_types=["text/html"])
    with pytest.raises(ValueError):
        WidgetSettings(max_frame_bytes=10)
    with pytest.raises(ConfigError, match=r"channels\.widget\.alowed_origins"):  # a typo is an error, not ignored
        load_settings(WidgetChannel, {"alowed_origins": []}, {})


def test_project_endpoints_allow_the_demo_shop():
    widget = load_settings(WidgetChannel, load_endpoints(ROOT / "endpoints.yml").channels["widget"], {})
    assert {"http://127.0.0.1:5005", "http://localhost:5005"} <= set(widget.allowed_origins)


def test_suggestions_read_the_language_with_the_bots_rule():
    assert detect_language("运费多少") == "zh" and detect_language("shipping fee") == "en"
    assert detect_language("KF20240001", "zh") == "en" and detect_language("123", "zh") == "zh"


def test_the_state_follows_nobody_online_leaving_a_message_and_the_ticket():
    """What the bubble's header says after a reload: the conversation's real state, not the last handoff's."""
    events = [ev.handoff_requested("explicit_request", []),
              {"event": ev.QUEUED, "position": 1, "eta_s": None, "nobody_online": True}]
    state = protocol.conversation_state(events)
    assert state["handoff"] == "queued" and state["details"] == {"queue_position": 1, "nobody_online": True}
    cancelled = protocol.render_event(stored({"event": ev.HANDOFF_CANCELLED, "leave_message": True}, 3))
    assert cancelled["state"] == "cancelled" and cancelled["leave_message"] is True
    events += [{"event": ev.HANDOFF_CANCELLED, "by": "shopper", "leave_message": True},
               ev.bot("Please write your message", {"leave_message": "offline"})]
    assert protocol.render_event({**events[-1], "seq": 4})["leave_message"] is True
    assert protocol.conversation_state(events)["handoff"] == "leave_message"
    events += [ev.user("my parcel is late"), {"event": ev.TICKET_CREATED, "ticket_id": "T1001"}]
    assert protocol.conversation_state(events)["handoff"] == "ticket"
    assert protocol.conversation_state(events)["details"] == {"ticket_id": "T1001"}
    # asked for the message, then "cancel": back with the bot
    events += [ev.bot("Please write your message", {"leave_message": "offline"}), ev.user("cancel"),
               ev.bot("OK, no message left.")]
    assert protocol.conversation_state(events)["handoff"] is None
