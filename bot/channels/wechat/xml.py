"""WeChat's XML in and out: a strict flat parser and CDATA-safe rendering (docs/channels.md §1.3–§1.5).

Inbound: size cap, no DOCTYPE/ENTITY (WeChat never sends one; cheap defence against entity tricks on top of
expat's own amplification limit), root `<xml>`, one level of fields, case-insensitive lookup (`MsgId` and
`MsgID` both occur). Outbound: `]]>` is split across two CDATA sections and characters XML 1.0 forbids are
dropped, so shopper or agent text can never end the section early and inject elements (wechatpy's bug).
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class XMLError(ValueError):
    """Not a WeChat XML document (what the 400 says)."""


class Fields:
    """The fields of a flat `<xml>` document; lookup ignores case, unknown fields are simply there."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = {key.lower(): value for key, value in values.items()}

    def get(self, name: str, default: str = "") -> str:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def __repr__(self) -> str:
        return f"Fields({sorted(self._values)})"  # names only: values are shoppers' messages


def parse(body: bytes, max_bytes: int) -> Fields:
    if len(body) > max_bytes:
        raise XMLError(f"body larger than {max_bytes} bytes")
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise XMLError("DOCTYPE and ENTITY declarations are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise XMLError("body is not well-formed XML") from None
    except (LookupError, ValueError):  # `<?xml encoding="…"?>` naming an encoding expat cannot read (gbk, "nope")
        raise XMLError("body declares an encoding that cannot be read (WeChat sends UTF-8)") from None
    if root.tag != "xml":
        raise XMLError("root element must be <xml>")
    return Fields({child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)})


def clean(text: str) -> str:
    """Drop characters that XML 1.0 does not allow (control characters, lone surrogates, U+FFFE/U+FFFF)."""
    return _FORBIDDEN.sub("", text)


def cdata(text: str) -> str:
    return "<![CDATA[" + clean(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, create_time: int, content: str) -> str:
    """A passive text reply (To/From already swapped by the caller)."""
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


def encrypted_reply(encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(msg_signature)}</MsgSignature>"
            f"<TimeStamp>{int(timestamp)}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>")
