"""Built-in texts for responses a project may not define (a plain Rasa bot has no `utter_handoff`)."""

from __future__ import annotations

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "utter_default": {
        "en": "Sorry, I didn't quite get that. Could you rephrase? You can also ask for a person.",
        "zh": "抱歉，我没太明白您的意思，能换个说法吗？您也可以说“转人工”。",
    },
    "utter_handoff": {
        "en": "I'm connecting you to a person. Please hold on a moment.",
        "zh": "正在为您转接人工客服，请稍候。",
    },
    "utter_handoff_cancelled": {
        "en": "OK, you're back with the bot. How can I help?",
        "zh": "好的，已取消转人工。还有什么可以帮您？",
    },
    "utter_did_you_mean": {
        "en": "I'm not sure I understood. Did you mean one of these?",
        "zh": "我不太确定您的意思，您是想问下面这些吗？",
    },
    "utter_talk_to_person": {"en": "Talk to a person", "zh": "转人工客服"},
}


def default_text(name: str, language: str | None) -> str | None:
    texts = DEFAULT_TEXTS.get(name)
    if not texts:
        return None
    return texts.get(language or "en") or texts["en"]
