"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that read raw bytes from outsiders: WeChat's XML
push (and its AES envelope) and the chat bubble's WebSocket frames. `make fuzz` runs each for a fixed time.

Usage (from the project folder): python -m tests.fuzz.atheris_parsers {xml|frames} [libFuzzer flags, e.g.
-max_total_time=60]

Each input must parse or raise the project's own error (`XMLError`, `DecryptError`, `FrameError`); anything else
is a crash: libFuzzer prints the input, saves it as crash-<sha1> and the run exits non-zero. Not collected by
pytest (tests/test_parser_properties.py holds the same promises as property tests that `make test` runs).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["bot"]):
    from bot.channels.wechat import xml
    from bot.channels.wechat.crypto import DecryptError, MessageCipher
    from bot.channels.wechat.inbound import normalise
    from bot.channels.widget.protocol import FrameError, parse_client_frame
    from bot.channels.widget.settings import WidgetSettings

CIPHER = MessageCipher("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234567890abcdef")
WIDGET = WidgetSettings()
MAX_XML_BYTES = 64 * 1024

SEEDS = {
    "xml": [
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
        b"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>"
        b"<MsgId>1</MsgId></xml>",
        b"<xml><MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_1</EventKey>"
        b"<FromUserName>o</FromUserName><ToUserName>g</ToUserName></xml>",
        b'<?xml version="1.0" encoding="utf-8"?><xml><Encrypt><![CDATA[' + CIPHER.encrypt("<xml/>").encode()
        + b"]]></Encrypt></xml>",
    ],
    "frames": [
        b'{"type": "hello", "token": "", "last_seq": 0}',
        b'{"type": "message", "client_msg_id": "abcdefgh1", "text": "hi", "attachments": []}',
        b'{"type": "csat", "client_msg_id": "abcdefgh2", "score": 5}',
        b'{"type": "typing", "state": "on"}',
    ],
}


def fuzz_xml(data: bytes) -> None:
    """What the webhook does after the signature: parse, open an envelope, read the fields."""
    try:
        fields = xml.parse(data, MAX_XML_BYTES)
    except xml.XMLError:
        return
    encrypted = fields.get("Encrypt")
    if encrypted:
        try:
            fields = xml.parse(CIPHER.decrypt(encrypted).encode("utf-8"), MAX_XML_BYTES)
        except (DecryptError, xml.XMLError):
            return
    normalise(fields)
    xml.text_reply(fields.get("FromUserName"), fields.get("ToUserName"), 0, fields.get("Content"))


def fuzz_frames(data: bytes) -> None:
    """What the widget socket does with a text frame (aiohttp hands it over as str)."""
    text = data.decode("utf-8", "surrogateescape")  # like a client that sends broken UTF-16 halves
    try:
        parse_client_frame(text, WIDGET)
    except FrameError:
        return


TARGETS = {"xml": fuzz_xml, "frames": fuzz_frames}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    target, args = sys.argv[1], sys.argv[2:]
    if not [arg for arg in args if not arg.startswith("-")]:  # no corpus or crash file given: start from seeds
        corpus = Path(tempfile.mkdtemp(prefix=f"kefu-fuzz-{target}-"))
        for i, seed in enumerate(SEEDS[target]):
            (corpus / f"seed-{i}").write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup([sys.argv[0], *args], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
