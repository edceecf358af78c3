"""The NLU pipeline: text → language → tokens → features → calibrated intent ranking → entities.

Training data is Rasa NLU data (bot.formats.nlu_data); the parse result is Rasa's shape plus `language`.

An intent's confidence is the classifier's calibrated probability (classifier.py: logistic regression with a
temperature fitted by cross-validation) times the novelty factor (novelty.py: 1 unless the message is unlike
all training examples), with the share of the hidden off-topic class (background.py) given to no intent. So
confidences sum to at most 1, and a low top confidence means "not sure which intent" or "not one of ours".

A trained pipeline is two files in a model directory: `nlu_meta.json` (settings, vocabularies, entity
definitions, a SHA-256 of the arrays) and `nlu_arrays.npz` (weights and training features, loaded without
pickle). Parsing only reads the trained state, so concurrent `parse` calls from a thread pool are safe.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bot.config import Config
from bot.durable import write_atomically
from bot.formats.nlu_data import NLUData
from bot.language import SAMPLE_MESSAGES, detect_language, mainland_chinese
from bot.nlu import background
from bot.nlu.classifier import IntentClassifier
from bot.nlu.embedder import Embedder, embedder_for
from bot.nlu.entities import EntityExtractor
from bot.nlu.featurizers import ExampleRows, Features, FeatureSettings, Featurizer
from bot.nlu.novelty import ALPHA, NoveltyScorer
from bot.nlu.tokenizer import make_doc, tokenize, words

META_FILE = "nlu_meta.json"
ARRAYS_FILE = "nlu_arrays.npz"
FORMAT = "kefu-nlu"
VERSION = 1
RANKING_LENGTH = 10
BACKGROUND_WEIGHT = 0.5  # total weight of the off-topic examples, in average intents
CLASS_BALANCE = 0.75  # 0: every example weighs 1; 1: every intent weighs the same whatever its example count


class ModelError(RuntimeError):
    """A persisted NLU model that cannot be used: missing, corrupt, or from another version or model."""


def _options(config: Config) -> dict[str, Any]:
    """Optional settings from a `- name: KefuNLU` entry in config.yml's pipeline (defaults suit most bots).

    background: train the built-in off-topic class (background.py), default true;
    novelty_alpha: see novelty.py, default novelty.ALPHA;
    class_balance: how far an intent with many examples (a FAQ with thousands of phrasings) is kept from drowning
      the intents with a few dozen: intent weights ∝ count ** (1 - class_balance), default CLASS_BALANCE.
    """
    raw = config.component("KefuNLU") or {}
    return {
        "background": bool(raw.get("background", True)),
        "novelty_alpha": float(raw.get("novelty_alpha", ALPHA)),
        "class_balance": float(raw.get("class_balance", CLASS_BALANCE)),
    }


def balanced_weights(labels: list[str], balance: float) -> np.ndarray:
    """Per-example weights, averaging 1, under which an intent of `count` examples weighs count ** (1 - balance)."""
    counts = Counter(labels)
    raw = np.array([counts[label] ** -balance for label in labels], dtype=np.float64)
    return raw * (len(labels) / raw.sum())


def _as_said(entities: list[dict[str, Any]], read: str, said: str) -> list[dict[str, Any]]:
    """Values in the shopper's own characters ("支付寶", as Rasa gives the text), unless a synonym mapped them."""
    if read != said:
        for entity in entities:
            if entity.get("value") == read[entity["start"] : entity["end"]]:
                entity["value"] = said[entity["start"] : entity["end"]]
    return entities


class NLUPipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.options = _options(config)
        self.intents: list[str] = []
        self.default_language = config.kefu.default_language
        self.embedding = config.kefu.embedding
        self.embedding_model = config.kefu.embedding.describe()
        self._entities = EntityExtractor()
        self._featurizer: Featurizer | None = None
        self._classifier: IntentClassifier | None = None
        self._novelty: NoveltyScorer | None = None
        self._examples: ExampleRows | None = None  # the training rows, for the novelty check
        self.languages: list[str] = []  # languages of the training examples
        self.training_report: dict[str, Any] = {}

    @property
    def embedder(self) -> Embedder:
        return embedder_for(self.embedding)

    # ---------------------------------------------------------------- training
    def train(self, data: NLUData, progress: Callable[[str], None] | None = None) -> None:
        say = progress or (lambda _msg: None)
        started = time.perf_counter()
        examples = [e for e in data.examples if e.text.strip()]
        texts = [mainland_chinese(e.text) for e in examples]  # read as messages are (`parse_batch`)
        labels = [e.base_intent for e in examples]
        self.intents = list(dict.fromkeys(labels))
        self._entities = EntityExtractor.from_data(data)
        self._featurizer = self._classifier = self._novelty = self._examples = None
        say(f"NLU: {len(texts)} examples, {len(self.intents)} intents, {len(self._entities.phrases)} entity values")
        if len(self.intents) < 2:
            self.training_report = {"examples": len(texts), "intents": len(self.intents)}
            say("NLU: fewer than two intents, nothing to classify")
            return
        n = len(texts)
        extra = [t for t in background.EXAMPLES if self.options["background"]]
        all_texts = texts + extra
        tokens = [self._tokens(t) for t in all_texts]
        say(f"NLU: embedding {len(all_texts)} examples with {self.embedding_model}")
        embeddings = self.embedder.encode(all_texts, batch_size=64)
        featurizer = Featurizer(FeatureSettings(embedding_reads_han=self.embedder.multilingual))
        featurizer.fit(all_texts, tokens)
        features = featurizer.transform(all_texts, tokens, embeddings)
        say(f"NLU: fitting the intent classifier on {features.sparse.shape[1] + features.dense.shape[1]} features")
        # the off-topic class weighs BACKGROUND_WEIGHT average intents, whatever the number of its examples
        weights = np.ones(len(all_texts))
        weights[:n] = balanced_weights(labels, self.options["class_balance"])
        if extra:
            weights[n:] = BACKGROUND_WEIGHT * (n / len(self.intents)) / len(extra)
        classifier = IntentClassifier()
        # the temperature calibrates intent confidences: fitted on the bot's own examples only
        calibrate_on = np.arange(len(all_texts)) < n
        classifier.fit(features, labels + [background.BACKGROUND] * len(extra), weights, calibrate_on)
        in_scope = _half_precision(features.rows(np.arange(n)))
        novelty = NoveltyScorer(alpha=self.options["novelty_alpha"])
        novelty.fit(in_scope, texts)
        self._featurizer, self._classifier, self._novelty = featurizer, classifier, novelty
        self._examples = ExampleRows.of(in_scope, self.embedder.blocks)
        self.languages = sorted({detect_language(t, self.default_language) for t in texts})
        self._warm_up()
        seconds = time.perf_counter() - started
        self.training_report = {
            "examples": len(texts),
            "intents": len(self.intents),
            "cv_accuracy": classifier.cv_accuracy,
            "temperature": classifier.temperature,
            "seconds": round(seconds, 2),
        }
        cv = f"{classifier.cv_accuracy:.1%}" if classifier.cv_accuracy is not None else "n/a"
        temperature = classifier.temperature
        say(f"NLU: trained in {seconds:.1f} s (cross-validated accuracy {cv}, temperature {temperature:.2f})")

    def _tokens(self, text: str) -> list[str]:
        return tokenize(text, detect_language(text, self.default_language))

    def _warm_up(self) -> None:
        """First calls build lazy state (jieba's dictionary, spaCy rulers, the classifier's weights, the encoder's
        rows of the pieces of these messages): do it before users arrive, and before `kefu run --workers`
        forks, so the workers share it instead of each building its own."""
        languages = [lang for lang in self.languages if lang in SAMPLE_MESSAGES] or ["en"]
        self.parse_batch([SAMPLE_MESSAGES[language] for language in languages])

    # ---------------------------------------------------------------- parsing
    def parse(self, text: str) -> dict[str, Any]:
        return self.parse_batch([text])[0]

    def parse_batch(self, texts: list[str], embeddings: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Parse several messages with one call to the embedder (for micro-batching concurrent messages);
        `embeddings`: the texts' vectors when the caller has them (made with this pipeline's embedder)."""
        if not texts:
            return []
        # traditional characters read as simplified, as the examples were at training (same length: the entities'
        # offsets hold for the shopper's own text)
        read = [mainland_chinese(t) for t in texts]
        languages = [detect_language(t, self.default_language) for t in read]
        docs = [make_doc(t, lang) for t, lang in zip(read, languages, strict=True)]
        rankings = self._rank_intents(read, docs, embeddings)
        results = []
        for text, said, language, doc, ranking in zip(read, texts, languages, docs, rankings, strict=True):
            top = ranking[0] if ranking else {"name": None, "confidence": 0.0}
            results.append(
                {
                    "text": said,
                    "intent": dict(top),
                    "intent_ranking": ranking,
                    "entities": _as_said(self._entities.extract(text, language, doc), text, said),
                    "language": language,
                }
            )
        return results

    def _rank_intents(self, texts: list[str], docs: list[Any],
                      embeddings: np.ndarray | None) -> list[list[dict[str, Any]]]:
        if not self.intents:
            return [[] for _ in texts]
        if self._classifier is None:  # one intent: nothing to choose between
            return [[{"name": self.intents[0], "confidence": 1.0}] for _ in texts]
        assert self._featurizer is not None and self._novelty is not None and self._examples is not None
        tokens = [list(words(doc)) for doc in docs]
        if embeddings is None:
            embeddings = self.embedder.encode(list(texts))
        features = self._featurizer.transform(list(texts), tokens, embeddings)
        probabilities = self._classifier.predict_proba(features)
        nearest = self._examples.nearest(features, enough=self._novelty.enough())
        confidences = probabilities * self._novelty.factor(nearest)[:, None]
        classes = self._classifier.classes
        if background.BACKGROUND in classes:  # its share of probability is simply not handed to any intent
            confidences[:, classes.index(background.BACKGROUND)] = -1.0
        out = []
        for row in confidences:
            order = [i for i in np.argsort(-row, kind="stable")[:RANKING_LENGTH + 1] if row[i] >= 0]
            order = order[:RANKING_LENGTH]
            out.append([{"name": classes[i], "confidence": round(float(row[i]), 6)} for i in order])
        return out

    # ---------------------------------------------------------------- persistence
    def persist(self, directory: Path) -> None:
        """Write the two model files into an existing directory (each atomically: temp file + rename)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelError(f"{directory}: not a directory")
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "embedding_model": self.embedding_model,
            "default_language": self.default_language,
            "intents": self.intents,
            "languages": self.languages,
            "entities": self._entities.state(),
            "training": self.training_report,
            "trained": self._classifier is not None,
        }
        if self._classifier is not None:
            assert self._featurizer is not None and self._novelty is not None and self._examples is not None
            for key, (part_meta, part_arrays) in {
                "featurizer": self._featurizer.state(),
                "classifier": self._classifier.state(),
                "novelty": self._novelty.state(),
            }.items():
                meta[key] = part_meta
                arrays.update(part_arrays)
            train = self._examples.features()
            arrays.update(
                train_dense=train.dense.astype(np.float16),
                train_data=train.sparse.data.astype(np.float16),
                train_indices=train.sparse.indices,
                train_indptr=train.sparse.indptr,
                train_shape=np.array(train.sparse.shape),
            )
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        meta["arrays_sha256"] = hashlib.sha256(payload).hexdigest()
        write_atomically(directory / ARRAYS_FILE, lambda tmp: tmp.write_bytes(payload))
        meta_bytes = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        write_atomically(directory / META_FILE, lambda tmp: tmp.write_bytes(meta_bytes))

    @classmethod
    def load(cls, directory: Path, config: Config) -> NLUPipeline:
        directory = Path(directory)
        meta_path, arrays_path = directory / META_FILE, directory / ARRAYS_FILE
        for path in (meta_path, arrays_path):
            if not path.is_file():
                raise ModelError(f"{path}: NLU model file missing; retrain the bot (kefu train)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_path}: corrupt or truncated NLU model file ({exc}); retrain the bot") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelError(f"{meta_path}: not a kefu NLU model file; retrain the bot")
        if meta.get("version") != VERSION:
            raise ModelError(
                f"{meta_path}: NLU model format version {meta.get('version')}, this kefu reads {VERSION}; retrain"
            )
        payload = arrays_path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta.get("arrays_sha256"):
            raise ModelError(f"{arrays_path}: corrupt or truncated NLU model file (checksum mismatch); retrain")
        configured = config.kefu.embedding.describe()
        if meta["embedding_model"] != configured:
            raise ModelError(
                f"{meta_path}: trained with embedding model {meta['embedding_model']!r} but config.yml names "
                f"{configured!r}; retrain the bot"
            )
        pipeline = cls(config)
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            pipeline.intents = [str(i) for i in meta["intents"]]
            pipeline.languages = [str(lang) for lang in meta.get("languages") or []]
            pipeline.default_language = str(meta.get("default_language") or pipeline.default_language)
            pipeline._entities = EntityExtractor.from_state(meta["entities"])
            pipeline.training_report = dict(meta.get("training") or {})
            if meta["trained"]:
                pipeline._featurizer = Featurizer.from_state(meta["featurizer"], arrays)
                pipeline._classifier = IntentClassifier.from_state(meta["classifier"], arrays)
                pipeline._novelty = NoveltyScorer.from_state(meta["novelty"], arrays)
                sparse = sp.csr_matrix(
                    (arrays["train_data"].astype(np.float32), arrays["train_indices"], arrays["train_indptr"]),
                    shape=tuple(int(n) for n in arrays["train_shape"]),
                )
                pipeline._examples = ExampleRows.of(Features(arrays["train_dense"], sparse), pipeline.embedder.blocks)
        except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{directory}: unusable NLU model ({type(exc).__name__}: {exc}); retrain") from None
        if pipeline._classifier is not None:
            pipeline._warm_up()
        return pipeline


def _half_precision(features: Features) -> Features:
    """The training rows kept for the novelty check, rounded to float16 as they are saved (half the file size),
    so a loaded model parses exactly like the trained one."""
    sparse = features.sparse.copy()
    sparse.data = sparse.data.astype(np.float16).astype(np.float32)
    return Features(features.dense.astype(np.float16).astype(np.float32), sparse)


