"""config.yml: Rasa's keys (recipe, language, pipeline, policies) plus kefu's own settings, validated by pydantic.

Rasa bots bring their config as it is: Rasa component names are accepted; kefu runs its own pipeline and reads
the thresholds Rasa users already set (FallbackClassifier, RulePolicy, MemoizationPolicy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.formats.yaml_io import DataError, line_of, load_yaml, validate


class Thresholds(BaseModel):
    """When the bot answers and when it falls back or escalates (see `kefu evaluate` for their cost)."""

    model_config = ConfigDict(extra="forbid")
    intent: float = Field(0.45, ge=0, le=1, description="intent confidence below this → fallback")
    ambiguity: float = Field(0.08, ge=0, le=1, description="top-2 intent margin below this → fallback")
    faq: float = Field(0.55, ge=0, le=1, description="P(best FAQ entry is right) needed to answer from the FAQ")
    faq_with_intent: float | None = Field(
        None, ge=0, le=1, description="FAQ score needed when the intent classifier is itself confident the message "
        "is a FAQ question (Rasa's ResponseSelector then answers whatever the score); None: the same as faq")
    faq_margin: float = Field(0.0, ge=0, le=1, description="FAQ top-2 margin below this → not confident")
    faq_clarify: float = Field(0.5, ge=0, le=1, description="not sure enough to answer, but the best few entries "
                               "together are at least this likely: ask \"do you mean …?\" with them as buttons")
    faq_offer: float = Field(0.1, ge=0, le=1, description="an entry is offered in \"do you mean …?\" from this score")
    human_over_faq: float = Field(0.0, ge=0, le=1, description="intent confidence from which the classifier's request "
                                  "for a person, in words the request rules don't know, wins over a confident FAQ "
                                  "answer; 0: always")
    max_fallbacks: int = Field(2, ge=1, description="fallbacks in a row before escalating")


USE_MULTILINGUAL = "use-multilingual-v3"  # numpy, fp32 only


class EmbeddingSettings(BaseModel):
    """Which sentence encoder reads which language: one name for every language, or one per language."""

    model_config = ConfigDict(extra="forbid")
    model: str | dict[str, str] = Field(
        default_factory=lambda: {"en": "all-MiniLM-L6-v2", "zh": "use-multilingual-v3"},
        description="all-MiniLM-L6-v2, use-multilingual-v3 or a path to a local sentence-transformers model; "
                    "or a mapping from language (en, zh) to one of these")
    multilingual: bool = Field(False, description="the sentence-transformers model at that path reads Chinese too")
    quantize: bool = Field(True, description="serve sentence-transformers models in int8 (onnxruntime): about twice "
                                             "as fast and a quarter of the weights' memory, answers unchanged on "
                                             "the demo shop; false serves fp32")

    def models(self, languages: list[str]) -> dict[str, str]:
        """language → encoder name for every language the bot serves."""
        if isinstance(self.model, str):
            return dict.fromkeys(languages, self.model)
        default = next(iter(self.model.values()))
        return {language: self.model.get(language, default) for language in languages}

    def describe(self) -> str:
        """The encoders as a trained model records them: vectors of another model or precision don't match."""
        def named(model: str) -> str:
            return f"{model} (int8)" if self.quantize and model != USE_MULTILINGUAL else model

        if isinstance(self.model, str):
            return named(self.model)
        return ", ".join(f"{k}: {named(v)}" for k, v in self.model.items())


class KefuSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    languages: list[str] = ["zh", "en"]
    default_language: str = "en"
    embedding: EmbeddingSettings = EmbeddingSettings()
    thresholds: Thresholds = Thresholds()
    faq_top_k: int = Field(3, ge=1, le=20)
    human_request_intents: list[str] = ["human_handoff", "request_human", "contact_human_agent"]
    complaint_intents: list[str] = ["complaint"]
    escalate_on_fallback: bool = True


class Config(BaseModel):
    model_config = ConfigDict(extra="allow")
    recipe: str = "default.v1"
    language: str = "en"
    assistant_id: str | None = None
    pipeline: list[dict[str, Any]] | str | None = []
    policies: list[dict[str, Any]] | None = []
    kefu: KefuSettings = KefuSettings()

    def component(self, name: str) -> dict[str, Any] | None:
        """The settings of a pipeline component or policy named `name`, if the config lists it."""
        items = (self.pipeline if isinstance(self.pipeline, list) else []) + (self.policies or [])
        return next((c for c in items if isinstance(c, dict) and c.get("name") == name), None)

    def effective_thresholds(self) -> Thresholds:
        """kefu thresholds, taking Rasa's FallbackClassifier settings when the user set no kefu ones."""
        thresholds = self.kefu.thresholds.model_copy()
        explicit = self.kefu.thresholds.model_fields_set
        fallback = self.component("FallbackClassifier")
        if fallback:
            if "intent" not in explicit and "threshold" in fallback:
                thresholds.intent = float(fallback["threshold"])
            if "ambiguity" not in explicit and "ambiguity_threshold" in fallback:
                thresholds.ambiguity = float(fallback["ambiguity_threshold"])
        return thresholds

    def memo_max_history(self) -> int | None:
        memo = self.component("MemoizationPolicy") or self.component("AugmentedMemoizationPolicy")
        return int(memo["max_history"]) if memo and memo.get("max_history") else None


def load_config(path: str | Path) -> Config:
    raw = load_yaml(path) if Path(path).exists() else None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DataError("config must be a mapping (language:, pipeline:, policies:, kefu:)", path, line_of(raw))
    return validate(Config, raw, path)
