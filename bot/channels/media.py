"""What the bot reads for media a shopper sent, which it cannot look at: "[图片]" / "[image]" and so on, in the
conversation's language; the media itself travels in the message's metadata for the agent."""

from __future__ import annotations

_TEXTS = {"image": ("[图片]", "[image]"), "video": ("[视频]", "[video]"), "voice": ("[语音]", "[voice message]"),
          "file": ("[文件]", "[file]"), "location": ("[位置]", "[location]"), "link": ("[链接]", "[link]")}
_SAME_AS = {"shortvideo": "video", "audio": "voice", "fallback": "link"}  # the platforms' own names
KINDS = frozenset(_TEXTS) | frozenset(_SAME_AS)


def placeholder(kind: str, language: str) -> str:
    """The text standing for one piece of media of `kind` ("[附件]" / "[attachment]" when it is none we know)."""
    zh, en = _TEXTS.get(_SAME_AS.get(kind, kind), ("[附件]", "[attachment]"))
    return zh if language == "zh" else en
