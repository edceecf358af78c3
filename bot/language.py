"""Which language a text and a conversation are in: the one home of kefu's Chinese/English rule.

A message is Chinese when Han characters carry a meaningful share of it, else English. One Han character
carries about as much as one English word, so Han characters are weighed against Latin words (not letters):
"退货要几天 refund" is Chinese, "I love my new 手机 so much" is English. A message with no words at all (an
order number, "ok", "👍") keeps the language the conversation already speaks.

Chinese is read in one script and one vocabulary (`mainland_chinese`: traditional characters as simplified, written
Cantonese's common words as Mandarin, Taiwan's shop words as the mainland's) and answered in the shopper's script
(`writes_traditional`, `traditional`).

A conversation speaks the language of its latest turn: the engine sets the `language` slot on every user
message (and handoff events carry it), `conversation_language` reads it back from the events, and the agent
mirrors it into the conversation's meta so channels can ask without loading the events.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import opencc

from bot.dialogue.events import HANDOFF_EVENTS
from bot.simplified_only import CHARACTERS as SIMPLIFIED_ONLY

LANGUAGES = ("zh", "en")
# A shopper's message in each language: asked once at load to build what the first real message would
# build (bot/nlu/pipeline.py, bot/faq/index.py).
SAMPLE_MESSAGES = {"en": "hello, where is my order?", "zh": "你好，我的订单到哪了？"}

# CJK Unified Ideographs (+ extension A, compatibility ideographs, extensions B-F), as a character class body.
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
HAN = re.compile(f"[{HAN_CHARS}]")
LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")
# What makes a message more than an id or a reaction: a Han character or a Latin word of 3+ letters.
_WORDS = re.compile(f"[{HAN_CHARS}]|[A-Za-z]{{3,}}")

# Share of Han characters among (Han characters + Latin words) from which a message counts as Chinese.
ZH_SHARE = 0.4


_TO_SIMPLIFIED = opencc.OpenCC("t2s")  # ~2 MB


@functools.cache
def _to_traditional() -> opencc.OpenCC:
    """Made when the first shopper who writes traditional characters needs it: its phrase table takes ~26 MB.
    Taiwan's forms (為, 裡, 著), which Hong Kong and Macau read as their own, rather than OpenCC's standard ones
    (爲, 裏, 着), which neither writes."""
    return opencc.OpenCC("s2tw")


# Written Cantonese (Hong Kong, Macau, Guangdong) in the words a shop's phrasings say in Mandarin:
# "寄香港使唔使俾關稅" reads "寄香港要不要给关税". Only same-length words, so offsets hold. A few words are read so
# only where they mean what a shopper means, which their neighbours tell; these rules see the text before t2s,
# which would make 係 ("is") 系 ("system"): 係 but not in 關係 / 聯係 ("relation", Mandarin in Hong Kong and Taiwan),
# 碌 ("swipe" a card) but not in 忙碌 ("busy"), 蚊 ("dollar") after a number only.
_IN_CONTEXT = [
    (re.compile(r"(?<![關关联聯维維派体體])係"), "是"),
    (re.compile(r"(?<![忙勞劳庸碌])碌(?!碌)"), "刷"),
    (re.compile(r"(?<=[0-9０-９一二两兩三四五六七八九十百千万萬几幾])蚊"), "元"),
]
_CANTONESE_WORDS = {
    "唔该": "麻烦", "使唔使": "要不要", "得唔得": "行不行", "几耐": "多久", "几多": "多少", "几钱": "多少",
    "几时": "何时", "点样": "怎样", "点解": "为何", "点算": "咋办", "边度": "哪里", "边个": "哪个", "到边": "到哪",
    "去边": "去哪", "咗边": "了哪", "喺边": "在哪", "而家": "现在", "埋单": "结账", "落单": "下单",
    "落咗单": "下了单", "落嚟": "过来", "平啲": "便宜", "平咗": "降了", "港纸": "港币", "攞返": "拿回",
    "退返": "退回", "换返": "换回", "是咪": "是不", "仲有": "还有", "仲未": "还没", "仲是": "还是", "仲要": "还要",
    "啱啱": "刚刚", "搞掂": "搞定", "咁样": "这样", "听日": "明天", "琴日": "昨天", "咩嘢": "什么", "乜嘢": "什么",
    "啲嘢": "东西", "唔": "不", "冇": "没", "嘅": "的", "咗": "了", "啲": "的", "喺": "在", "哋": "们", "嚟": "来",
    "睇": "看", "攞": "拿", "畀": "给", "俾": "给", "佢": "他", "嗰": "那", "\U00020bb6": "那", "揾": "找",
    "咩": "啥", "乜": "啥", "拣": "选", "衫": "衣", "啱": "对", "㗎": "的", "喎": "啊", "啩": "吧", "嘞": "了",
}
# Taiwan's (and Hong Kong's) words for what a mainland shop calls otherwise: "保固多久" reads "保修多久". Same
# length too.
_TAIWAN_WORDS = {
    "保固": "保修", "统编": "税号", "统一编号": "公司税号", "折价券": "优惠券", "折扣码": "优惠码", "点数": "积分",
    "刷退": "退款", "退费": "退款", "出货": "发货", "宅配": "快递", "到府": "上门", "超商": "便利", "简讯": "短信",
    "讯息": "信息", "资料": "信息", "品质": "质量", "影片": "视频", "结帐": "结账", "帐号": "账号", "帐户": "账户",
    "帐单": "账单", "登入": "登录", "客诉": "投诉", "门市": "门店", "鉴赏期": "无理由", "免运": "包邮",
    "网路": "网络", "软体": "软件", "金融卡": "银行卡", "提款卡": "银行卡", "汇款": "转账", "送修": "返修",
}
_MANDARIN_WORDS = {**_CANTONESE_WORDS, **_TAIWAN_WORDS}
_REGIONAL = re.compile("|".join(sorted(map(re.escape, _MANDARIN_WORDS), key=len, reverse=True)))


def mainland_chinese(text: str) -> str:
    """The text as mainland Chinese is written, which is how rules and phrasings are written: traditional characters
    as simplified ("請問可以幫我轉給專人嗎" → "请问可以帮我转给专人吗", OpenCC's t2s, ~3 µs a message), written
    Cantonese's common words as Mandarin and Taiwan's shop words as the mainland's, so that shoppers from Hong Kong,
    Macau and Taiwan are read too. The text keeps its length (t2s maps characters and same-length phrases, the words
    above are same-length), so offsets into it hold; a text the conversion would lengthen or shorten is returned as
    it is."""
    if not HAN.search(text):
        return text
    text_read = text
    for rule, word in _IN_CONTEXT:
        text_read = rule.sub(word, text_read)
    converted = _TO_SIMPLIFIED.convert(text_read)
    converted = _REGIONAL.sub(lambda word: _MANDARIN_WORDS[word.group()], converted)
    return converted if len(converted) == len(text) else text


def traditional(text: str) -> str:
    """Simplified characters as traditional (Taiwan's forms): the bot's Chinese replies to a shopper who writes
    traditional ones."""
    return _to_traditional().convert(text) if HAN.search(text) else text


TRADITIONAL, SIMPLIFIED = "traditional", "simplified"
SCRIPT = "script"  # a button's payload may say which script its page shows: `/faq{"faq_id": …, "script": …}`


def shopper_writes_traditional(events: Sequence[Mapping[str, Any]], language: str | None,
                               newest: Mapping[str, Any] | None = None) -> bool:
    """Whether the bot's Chinese words to this shopper go in traditional characters: the conversation speaks
    Chinese and the shopper's newest message that tells is so written (`newest`, a user event not yet among
    `events`, first). A button pressed tells by the script its payload names (the chat bubble's suggestions, in
    the script the bubble shows). The engine's replies, the handoff's short answers and its notices all ask here."""
    if language != "zh":
        return False
    said = (e for e in reversed(events) if e.get("event") == "user")
    for event in itertools.chain([newest] if newest else [], said):
        script = _named_script(event) or script_of(event.get("text") or "")
        if script:
            return script == TRADITIONAL
    return False


def _named_script(event: Mapping[str, Any]) -> str | None:
    entities = (event.get("parse_data") or {}).get("entities") or []
    return next((e.get("value") for e in entities if e.get("entity") == SCRIPT and e.get("extractor") == "payload"
                 and e.get("value") in (TRADITIONAL, SIMPLIFIED)), None)


def bot_message_in_traditional(event: Mapping[str, Any]) -> dict[str, Any]:
    """A bot message, its text and its buttons' titles, in traditional characters."""
    data = dict(event.get("data") or {})
    if data.get("buttons"):
        data["buttons"] = [{**b, "title": traditional(b["title"])} if isinstance(b.get("title"), str) else b
                           for b in data["buttons"]]
    text = event.get("text")
    return {**event, "text": traditional(text) if isinstance(text, str) else text, "data": data}


def writes_traditional(texts: Iterable[str]) -> bool:
    """Whether a shopper writes traditional characters, from their messages newest first: the newest one written
    in one script only tells ("好的" is the same in both and tells nothing)."""
    return next((script == TRADITIONAL for script in map(script_of, texts) if script), False)


def script_of(text: str) -> str | None:
    """TRADITIONAL or SIMPLIFIED when the text is written in one script only; None when it reads the same in both
    ("好的") or has no Chinese."""
    if _TO_SIMPLIFIED.convert(text) != text:
        return TRADITIONAL
    return None if SIMPLIFIED_ONLY.isdisjoint(text) else SIMPLIFIED


def han_share(text: str) -> float:
    """Han characters / (Han characters + Latin words); 0.0 for text with neither."""
    han = len(HAN.findall(text))
    words = len(LATIN_WORD.findall(text))
    return han / (han + words) if han + words else 0.0


def detect_language(text: str, default: str = "en") -> str:
    """"zh" or "en"; `default` when the text has no letters at all (digits, emoji, punctuation)."""
    han = len(HAN.findall(text))
    words = len(LATIN_WORD.findall(text))
    if han + words == 0:
        return default
    return "zh" if han / (han + words) >= ZH_SHARE else "en"


def normalise(language: str | None, default: str = "en") -> str:
    """One of LANGUAGES: anything else (None, "zh-CN", "EN") maps to its base or to `default`."""
    base = (language or "").split("-")[0].lower()
    return base if base in LANGUAGES else default


def language_of_message(text: str, detected: str | None, current: str | None, default: str,
                        entities: Iterable[Mapping[str, Any]] = ()) -> str:
    """The language a message sets for the conversation.

    `detected` is the NLU's guess (None for a button payload, which keeps the conversation's language); a
    message with no words once its entities are removed ("KF20240001", "ok", "👍") keeps `current` too."""
    if detected is None:
        return current or default
    if current and detected != current:
        words = text
        for entity in sorted(entities, key=lambda e: -(e.get("start") or 0)):
            if isinstance(entity.get("start"), int) and isinstance(entity.get("end"), int):
                words = words[: entity["start"]] + words[entity["end"] :]
        if not _WORDS.search(words):
            return current
    return detected


def conversation_language(events: Iterable[Mapping[str, Any]], default: str) -> str:
    """The language a conversation speaks after these events: the latest `language` slot the engine set, or the
    language a handoff event carries; `default` before either."""
    language = default
    for event in events:
        language = language_after(event, language)
    return language


def language_after(event: Mapping[str, Any], language: str | None) -> str | None:
    """`conversation_language` one event at a time (a tracker keeps it up to date as events arrive)."""
    if event.get("event") == "slot" and event.get("name") == "language" and event.get("value"):
        return event["value"]
    if event.get("event") in HANDOFF_EVENTS and event.get("language") in LANGUAGES:
        return event["language"]
    return language
