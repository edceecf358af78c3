"""Property tests of every parser that reads what outsiders (or project authors) write (issue 14, "Fuzzing"):
each either parses or raises the project's own error — the one its caller turns into a 400, an error frame or a
line-numbered data error — and never anything else, which would be a 500, a dead socket or a traceback.

WeChat XML (`XMLError`) and its AES envelope (`DecryptError`, and a round trip), Messenger batches (malformed
items are skipped, never raised), widget frames (`FrameError`), the button payload syntax `/intent{"slot": …}`
(a parse or None), entity annotations and the Rasa YAML loaders (`DataError`). KEFU_PROPERTY_EXAMPLES sets the
examples per property (`make fuzz` runs many more).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.channels.messenger.inbound import parse_batch, to_text
from bot.channels.wechat import xml
from bot.channels.wechat.crypto import DecryptError, MessageCipher, signature, signature_ok
from bot.channels.wechat.inbound import normalise
from bot.channels.widget.protocol import FrameError, parse_client_frame
from bot.channels.widget.settings import WidgetSettings
from bot.formats.domain import parse_domain
from bot.formats.faq_data import parse_faq
from bot.formats.nlu_data import parse_annotated, parse_nlu
from bot.formats.stories import parse_stories
from bot.formats.yaml_io import DataError, load_yaml_text
from bot.parsing import parse_payload

EXAMPLES = int(os.environ.get("KEFU_PROPERTY_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1234567890abcdef"
WIDGET = WidgetSettings()

# -- strategies -----------------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def objects_with(keys: list[str], values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[dict]:
    """Dicts whose keys are mostly the ones a parser looks for, with any JSON values."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), values, max_size=len(keys))


# -- WeChat ---------------------------------------------------------------------------------------------------

FIELD_NAMES = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MsgID", "Event",
               "EventKey", "MediaId", "PicUrl", "Recognition", "Location_X", "Label", "Title", "Encrypt"]
xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def wechat_documents(draw: st.DrawFn) -> bytes:
    """Documents shaped like WeChat's, with every part liable to be wrong: root, nesting, CDATA, entities,
    declarations, encodings, truncation."""
    root = draw(st.sampled_from(["xml", "xml", "XML", "root", "x:xml"]))
    parts = []
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES) | st.from_regex(r"[A-Za-z_][\w.-]{0,8}", fullmatch=True),
                              max_size=6)):
        value = draw(xml_text)
        form = draw(st.sampled_from(["cdata", "plain", "nested", "empty"]))
        inner = {"cdata": f"<![CDATA[{value}]]>", "plain": value.replace("<", "&lt;").replace("&", "&amp;"),
                 "nested": f"<a>{value}</a>", "empty": ""}[form]
        parts.append(f"<{name}>{inner}</{name}>")
    body = f"<{root}>{''.join(parts)}</{root}>"
    prolog = draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0"?>',
                                   '<?xml version="1.0" encoding="gbk"?>', '<?xml version="1.0" encoding="nope"?>',
                                   '<?xml version="1.1"?>', "<!DOCTYPE xml>", '<?xml-stylesheet href="a"?>']))
    data = (prolog + body).encode("utf-8")
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return data


def parse_or_refuse(body: bytes) -> xml.Fields | None:
    try:
        return xml.parse(body, 4096)
    except xml.XMLError:
        return None


@FUZZ
@given(wechat_documents())
@example(b'<?xml version="1.0" encoding="nope"?><xml/>')
@example(b"<xml><a>\xff\xfe</a></xml>")
@example(b"")
def test_wechat_xml_parses_or_is_refused_with_xml_error(body: bytes) -> None:
    fields = parse_or_refuse(body)
    if fields is not None:  # what the webhook does next with a parsed push
        for name in FIELD_NAMES:
            assert isinstance(fields.get(name), str)
        inbound = normalise(fields)
        assert inbound is None or isinstance(inbound.dedupe_key, str)


@FUZZ
@given(st.binary(max_size=300))
def test_wechat_xml_of_any_bytes_parses_or_is_refused(body: bytes) -> None:
    parse_or_refuse(body)


@FUZZ
@given(st.text(max_size=200))
def test_the_safe_mode_envelope_round_trips_any_text(text: str) -> None:
    cipher = MessageCipher(AES_KEY, APPID)
    assert cipher.decrypt(cipher.encrypt(text)) == text  # hypothesis' text has no lone surrogates, as UTF-8 has none


@FUZZ
@given(st.text(max_size=120) | st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode()))
def test_a_forged_envelope_is_refused_with_decrypt_error(encrypted: str) -> None:
    with contextlib.suppress(DecryptError):
        MessageCipher(AES_KEY, APPID).decrypt(encrypted)


@FUZZ
@given(st.binary(min_size=1, max_size=200), st.integers(0, 199), st.integers(1, 255))
def test_a_tampered_envelope_never_opens_as_another_message(message: bytes, at: int, flip: int) -> None:
    cipher = MessageCipher(AES_KEY, APPID)
    text = message.decode("latin-1")
    sealed = bytearray(base64.b64decode(cipher.encrypt(text)))
    sealed[at % len(sealed)] ^= flip
    try:
        opened = cipher.decrypt(base64.b64encode(bytes(sealed)).decode())
    except DecryptError:
        return
    # CBC has no integrity: a flip in the first blocks can survive, but only inside the random prefix/length
    assert opened == text or len(opened) != len(text) or at % len(sealed) < 32


@FUZZ
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40), st.text(max_size=60) | st.none())
def test_signatures_compare_without_raising(token: str, timestamp: str, nonce: str, given_sig: str | None) -> None:
    expected = signature(token, timestamp, nonce)
    assert signature_ok(expected, expected)
    assert signature_ok(expected, given_sig) == (given_sig is not None and given_sig.strip().lower() == expected)


# -- Messenger ------------------------------------------------------------------------------------------------

messages = objects_with(["mid", "text", "quick_reply", "attachments", "is_echo", "reply_to"],
                        json_values | st.lists(objects_with(["type", "payload", "url"]), max_size=3)
                        | objects_with(["payload", "url", "title"]))
items = objects_with(["sender", "recipient", "message", "postback", "delivery", "read", "timestamp",
                      "pass_thread_control"],
                     json_values | messages | objects_with(["id", "user_ref", "payload", "title", "referral"]))
batches = st.fixed_dictionaries({"object": st.just("page"), "entry": st.lists(
    objects_with(["id", "time", "messaging", "standby"], json_values | st.lists(items, max_size=3)), max_size=3)})


@FUZZ
@given(batches | st.dictionaries(st.text(max_size=6), json_values, max_size=4))
@example({"object": "page", "entry": [{"messaging": [{"sender": {"id": "1"},
                                                      "message": {"mid": "m", "attachments": 5}}]}]})
@example({"object": "page", "entry": [{"messaging": [{"sender": {"id": "1"}, "postback": {"payload": {}}}]}]})
def test_messenger_batches_never_raise_malformed_items_are_skipped(body: dict) -> None:
    for incoming in parse_batch(body):
        assert isinstance(incoming.user_id, str) and incoming.user_id
        if incoming.kind in ("message", "postback"):
            found = to_text(incoming, "en", "GET_STARTED")
            assert found is None or (isinstance(found[0], str) and found[0] and isinstance(found[1], dict))


# -- widget frames --------------------------------------------------------------------------------------------

FRAME_TYPES = ["hello", "message", "quick_reply", "typing", "read", "ping", "handoff_request", "handoff_cancel",
               "csat", "nope"]
frames = st.fixed_dictionaries({"type": st.sampled_from(FRAME_TYPES) | json_values}, optional={
    key: json_values | st.from_regex(r"[A-Za-z0-9_-]{6,70}", fullmatch=True)
    for key in ("client_msg_id", "text", "payload", "title", "token", "last_seq", "seq", "state", "score",
                "attachments")})


@FUZZ
@given(frames.map(lambda f: json.dumps(f, ensure_ascii=False)) | st.text(max_size=200)
       | st.sampled_from(["[" * 400, '{"type":' * 50, '{"type": "message", "text": NaN}', '"\\ud800"']))
def test_widget_frames_parse_or_raise_frame_error(raw: str) -> None:
    try:
        frame = parse_client_frame(raw, WIDGET)
    except FrameError as exc:
        assert exc.code in ("bad_frame", "too_large", "unknown_type")
        return
    assert type(frame).__name__ in ("Hello", "Outgoing", "Typing", "Read", "Ping")


# -- the payload syntax ---------------------------------------------------------------------------------------

payloads = st.builds(lambda intent, body: f"/{intent}{body}", st.from_regex(r"[\w./-]{1,12}", fullmatch=True),
                     st.just("") | json_values.map(json.dumps) | st.text(max_size=30).map(lambda t: "{" + t + "}"))


@FUZZ
@given(payloads | st.text(max_size=60))
@example('/faq{"language": {}}')
@example('/x{"a": ' + "[" * 100 + "]" * 100 + "}")
def test_button_payloads_parse_or_are_plain_text(text: str) -> None:
    parsed = parse_payload(text, "en")
    if parsed is not None:
        assert parsed["intent"]["name"] and parsed["language"] in (None, "zh", "en")
        assert all(isinstance(e["entity"], str) for e in parsed["entities"])


@FUZZ
@given(st.text(alphabet=string.printable + "中文[]{}()\"", max_size=60))
@example('[a]{"entity": ' + "[" * 100 + "]" * 100 + "}")
@example('[a]{"entity": "x", "value": NaN}')
def test_entity_annotations_parse_or_raise_data_error(text: str) -> None:
    try:
        plain, entities = parse_annotated(text)
    except DataError:
        return
    for entity in entities:
        assert 0 <= entity.start <= entity.end <= len(plain)


# -- Rasa YAML ------------------------------------------------------------------------------------------------

yaml_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["intent", "examples", "text", "steps", "action",
                                                              "entities", "slot_was_set", "id", "questions", "zh",
                                                              "en", "answers", "story", "rule", "synonym", "regex",
                                                              "lookup", "type", "buttons", "title", "payload",
                                                              "condition"]) | st.text(max_size=6),
                                             inner, max_size=4), max_leaves=16)
documents = st.fixed_dictionaries({}, optional={key: yaml_values for key in
                                                ("nlu", "rules", "stories", "faq", "intents", "entities", "slots",
                                                 "responses", "forms", "actions")})


def load_all(text: str) -> None:
    """What `kefu train` / `kefu data validate` do with one file's text."""
    data = load_yaml_text(text, "fuzz.yml")
    if not isinstance(data, dict):
        return
    parse_domain(data, "fuzz.yml")
    parse_nlu(data.get("nlu"), "fuzz.yml")
    parse_stories(data.get("rules"), "fuzz.yml", "rules")
    parse_stories(data.get("stories"), "fuzz.yml", "stories")
    parse_faq(data.get("faq"), "fuzz.yml")


@FUZZ
@given(documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)) | st.text(max_size=120))
@example("nlu:\n- intent: a\n  examples: |\n    - [x]{\"entity\": 1}\n")
@example("a: &x [*x]")
@example("? [a]\n: b\n")
def test_rasa_yaml_loads_or_raises_data_error(text: str) -> None:
    try:
        load_all(text)
    except DataError as exc:
        assert exc.message


# -- what the properties found, one test each -----------------------------------------------------------------

def test_wechat_xml_declaring_an_unreadable_encoding_is_a_400_reason_not_a_crash() -> None:
    for declared in ("nope", "gbk", "utf-16"):
        try:
            xml.parse(f'<?xml version="1.0" encoding="{declared}"?><xml><A>1</A></xml>'.encode(), 4096)
        except xml.XMLError as exc:
            assert "encoding" in str(exc) or "well-formed" in str(exc)


def test_messenger_attachments_that_are_not_a_list_are_ignored() -> None:
    body = {"object": "page", "entry": [{"id": "1", "messaging": [
        {"sender": {"id": "42"}, "message": {"mid": "m1", "text": "hi", "attachments": 5}}]}]}
    [incoming] = parse_batch(body)
    assert to_text(incoming, "en", "GET_STARTED") == ("hi", {})


def test_a_domain_with_a_slot_or_form_that_is_not_a_mapping_names_it_with_its_line() -> None:
    cases = {"slots:\n  size: true\n": "slot 'size' must be a mapping",
             "slots:\n  size:\n    type: text\n    values: 3\n": "slot 'size': values must be a list",
             "forms:\n  order_form: 7\n": "form 'order_form' must be a mapping",
             "forms:\n  f:\n    required_slots: 3\n": "form 'f': required_slots must be a list",
             "intents:\n- greet:\n    use_entities: 5\n": "intent 'greet': use_entities must be a list",
             "session_config: 60\n": "'session_config' must be a mapping"}
    for text, message in cases.items():
        try:
            parse_domain(load_yaml_text(text, "domain.yml"), "domain.yml")
        except DataError as exc:
            assert message in str(exc) and str(exc).startswith("domain.yml:"), (text, str(exc))
        else:
            raise AssertionError(f"accepted {text!r}")
