"""Split a message that asks several things into its questions: "几天到，运费多少" → ["几天到", "运费多少"].

Shoppers separate their questions with question marks, semicolons, line breaks, and words such as "还有",
"另外", "also", "and what about", or "and" before a question word. A comma alone separates two questions in
Chinese more often than in English, so it splits only when both sides look like questions of their own (long
enough to be one). The pieces are searched one by one; the bot answers each piece it is sure of that asks
something (`Clause.asks`), so one message gets every answer it asked for, and a clause that only tells the
situation ("买的马克杯想丢洗碗机里，会不会出问题") gets none of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.language import HAN_CHARS

# Always a boundary: end of a question or sentence, a semicolon, a line break.
_HARD = re.compile(r"(?<=[?？!！;；。\n])\s*|\s*\n\s*")
# A boundary when both sides are long enough: words that start another question ("另外" / "还有" as "besides", not
# "另外加钱" (pay extra) or "还有货吗" (still in stock)).
_JOINERS = re.compile(
    r"\s*[,，、]?\s*(?:(?:还有|另外)(?:就是|想?问(?:一?下)?)?(?!加|收|付|算|交|花|掏|货|没|吗|库存|码)"
    r"|顺便问(?:一?下)?|再问(?:一?下)?|以及|然后)\s*[,，:：]?\s*"
    r"|\s*[,;]?\s+(?:and also|also|and what about|what about|and how about|plus|btw|by the way|another question)"
    r"\b\s*[,:]?\s*"
    r"|\s+and\s+(?=(?:how|what|when|where|which|why|who|can|could|do|does|is|are|will|would|should)\b)",
    re.IGNORECASE,
)
# A comma: in Chinese between two clauses (a space between Chinese words is one too, "新人有优惠吗 拉朋友有奖励吗");
# in English only before a new question ("…, how much is it").
_COMMA = re.compile(
    rf"\s*，\s*|(?<=[{HAN_CHARS}])\s+(?=[{HAN_CHARS}])"
    r"|\s*,\s*(?=(?:and\s+)?(?:how|what|when|where|which|why|who|can|could|do|does|did|is|are|will|would"
    r"|should|any)\b)",
    re.IGNORECASE,
)
# A clause that asks something of its own: a question, or a request. "买的杯子想丢洗碗机里，会不会出问题" is one
# question (the first clause tells the situation); "几天到，运费多少" is two.
_ASKS = re.compile(
    # (什么 / 啥 / 谁 before 也 / 都 mean any- or no-: "等半天了啥也木有" tells, it does not ask)
    # (是…还是…: a choice asked, "用的是顺丰还是中通"; "还是" alone is "still", "试了还是不行")
    r"[?？]|吗|[不没]\W*$|嘛\W*$|呢\W*$|么\W*$|是[^，。？?\s]{1,10}还是(?![不没很挺太])|(?:什么|啥|谁)(?![^，。？?\s]{0,3}[也都])|怎么|怎样|咋|多少|多久|多长时间|为何|哪|能否|可否|是否|请问"
    rf"|几(?:天|点|号|时|日|周|个月|月|块|元|次)|([{HAN_CHARS}])[不没]\1|有没有|我(?:想要|要|想)(?![要的])|想要(?!的)|需要|麻烦|帮我|请"
    r"|^\W*(?:how|what|when|where|which|why|who|whom|whose|can|could|do|does|did|is|are|was|were|will|would|should"
    r"|shall|may|might|any|have|has|am|r u)\b"
    r"|\b(?:i need|i want|i'?d like|i would like|please|pls|plz|tell me|let me know|help me)\b",
    re.IGNORECASE,
)
_LEADING_JOINER = re.compile(
    r"^(?:(?:还有|另外)(?:就是|想?问(?:一?下)?)?|顺便问(?:一?下)?|以及|然后|(?:and also|also|and|plus|btw)\b)"
    r"\s*[,，:：]?\s*",
    re.IGNORECASE,
)
_CONTENT = re.compile(f"[{HAN_CHARS}]|[A-Za-z0-9]+")
_HAN = re.compile(f"[{HAN_CHARS}]")
# What is left of a clause without its question words, particles, modal verbs and pronouns is its topic. With
# (almost) none ("要多久", "多少钱", "能做吗", "how much does it cost") the clause asks about the clause before it.
_NOT_A_TOPIC_ZH = re.compile(
    r"多久|多长时间|多少|几(?:天|号|时|日|周|个月|月|块|元|次)?|什么时候|啥时候|什么|啥|怎么|怎样|咋|如何|为什么|为啥|哪"
    r"|可以|可不可以|能不能|能否|是不是|会不会|有没有|要不要|行不行|好不好|请问|还有|另外|那|这|个|一下|下"
    r"|[吗呢啊呀吧嘛么哦呗的了要能会行好还得又也都就再你我他她它们]"
)
_NOT_A_TOPIC_EN = re.compile(
    r"\b(?:how|what|when|where|which|why|who|much|many|long|soon|does|do|did|is|are|was|were|will|would|can|could"
    r"|should|may|might|it|its|that|this|they|them|those|these|one|ones|there|you|your|i|me|my|we|us|a|an|the"
    r"|and|also|then|to|for|of|on|in|with|be|get|have|has|take|takes|cost|costs|price|ok|okay|please|pls)\b",
    re.IGNORECASE,
)
_PRONOUN_EN = re.compile(r"\b(?:it|its|that|this|they|them|those|these|one|ones)\b", re.IGNORECASE)
MIN_UNITS = 3  # a question has at least this many Han characters or words
MAX_PARTS = 4


def _units(text: str) -> int:
    return len(_CONTENT.findall(text))


@dataclass(frozen=True)
class Clause:
    text: str
    set_apart: bool = False  # by "also", "另外", "还有"…: the shopper says it is another matter
    follows: bool = False  # another clause of the message comes before it

    @property
    def elliptic(self) -> bool:
        """Asks about something said before it rather than naming its own topic: "能寄新疆不 要多久", "can you
        engrave it, and how much does it cost". Alone, the FAQ reads it as another topic ("how long is delivery").
        A first clause refers to nothing before it: "几天到，运费多少" asks how long delivery takes."""
        if not self.follows:
            return False
        if _HAN.search(self.text):
            return len(_HAN.findall(_NOT_A_TOPIC_ZH.sub("", self.text))) <= 1
        words = _CONTENT.findall(_NOT_A_TOPIC_EN.sub(" ", self.text))
        return not words or (len(words) == 1 and bool(_PRONOUN_EN.search(self.text)))

    @property
    def asks(self) -> bool:
        """A question or request of its own, rather than the situation a question next to it is about."""
        return self.set_apart or bool(_ASKS.search(self.text))


def _split_keep(pieces: list[Clause], pattern: re.Pattern[str], set_apart: bool) -> list[Clause]:
    """Split each piece on `pattern` where both sides keep at least MIN_UNITS; otherwise leave it whole."""
    out: list[Clause] = []
    for piece in pieces:
        parts = [p for p in pattern.split(piece.text) if p and p.strip()]
        if len(parts) > 1 and all(_units(p) >= MIN_UNITS for p in parts):
            out += [Clause(p, set_apart) for p in parts]
        else:
            out.append(piece)
    return out


def clauses(text: str) -> list[Clause]:
    """The questions a message asks, in order; one clause (the text) when it asks one, or the split would be
    guesswork."""
    texts = [p.strip() for p in _HARD.split(text) if p and p.strip() and _units(p) > 0]
    opens = [bool(_LEADING_JOINER.match(t)) for t in texts]  # "…吗？还有…": both sides are matters of their own
    pieces = [Clause(t, opens[i] or (i + 1 < len(texts) and opens[i + 1])) for i, t in enumerate(texts)]
    pieces = _split_keep(pieces, _JOINERS, set_apart=True)
    pieces = _split_keep(pieces, _COMMA, set_apart=False)
    kept = [p for p in pieces if _units(p.text) >= MIN_UNITS]
    questions = [Clause(_LEADING_JOINER.sub("", p.text.strip(" ,，、.。")), p.set_apart, follows=i > 0)
                 for i, p in enumerate(kept)]
    if len(questions) < 2 or len(questions) > MAX_PARTS:
        return [Clause(text)]
    return questions


def split_questions(text: str) -> list[str]:
    """The texts of `clauses(text)`."""
    return [clause.text for clause in clauses(text)]
