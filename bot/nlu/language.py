"""Which language a message is in: Chinese when Han characters carry a meaningful share of it, else English.

One Han character carries about as much as one English word, so Han characters are weighed against Latin
words (not letters): "退货要几天 refund" is Chinese, "I love my new 手机 so much" is English.
"""

from __future__ import annotations

import re

# CJK Unified Ideographs (+ extension A, compatibility ideographs, extensions B-F).
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")

# Share of Han characters among (Han characters + Latin words) from which a message counts as Chinese.
ZH_SHARE = 0.4


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
