"""NLU + FAQ search off the event loop, batching messages that arrive while a batch is running.

One message alone runs at once (no added wait); under load, everything that queued up during the previous
batch is parsed as one batch: one call to each encoder, one pass of the classifiers and one FAQ search read each
weight once for all of them, which costs far less per message. Texts asked lately ("hi", "运费多少",
a button's text) are answered from a cache of their parses: keyed by the exact text (a trimmed or re-spaced text
would move the entities' offsets), for the model and FAQ version that made them — a live knowledge update or a
new model starts it empty.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import strict_json
from bot.language import LANGUAGES, mainland_chinese
from bot.model import TrainedModel
from bot.nlu.clauses import clauses
from bot.nlu.embedder import CACHED_BATCH

# Rasa's payload syntax for buttons: /intent or /intent{"entity": "value"}
_PAYLOAD = re.compile(r"^/(?P<intent>[\w./-]+)(?P<entities>\{.*\})?$", re.DOTALL)
MAX_BATCH = CACHED_BATCH
RETRIEVAL_POOL = 20  # FAQ hits searched, so a retrieval intent still finds its own answers
CACHED_PARSES = 2048  # ~5 KB each (as JSON)


def parse_payload(text: str, language: str) -> dict[str, Any] | None:
    match = _PAYLOAD.match(text.strip())
    if not match:
        return None
    entities = []
    if match.group("entities"):
        try:
            values = strict_json.loads(match.group("entities"))
        except strict_json.JSONInputError:
            return None
        entities = [{"entity": k, "value": v, "start": None, "end": None, "extractor": "payload"}
                    for k, v in (values.items() if isinstance(values, dict) else [])]
    intent = {"name": match.group("intent"), "confidence": 1.0}
    # a button press says nothing about the shopper's language (the engine keeps the conversation's), unless the
    # button says which language it speaks: `/faq{"faq_id": "…", "language": "en"}` (the bubble's suggestions,
    # in the language the shopper typed, also as a conversation's first message)
    spoken = next((e["value"] for e in entities if e["entity"] == "language" and e["value"] in LANGUAGES), None)
    return {"text": text, "intent": intent, "intent_ranking": [intent], "entities": entities,
            "language": spoken, "faq": []}


class ParseCache:
    """The latest parses by exact text, for one FAQ index (another one empties it). Thread-safe; callers get
    copies, so what the dialogue engine adds to a parse never reaches the next shopper.

    A parse is kept as its JSON text: one object instead of ~130 (a third of the memory, nothing for the garbage
    collector to walk, bot/collector.py), and reading it back makes the copy, faster than `copy.deepcopy`. A
    parse is JSON anyway: it is stored in the conversation's events.
    """

    def __init__(self, size: int = CACHED_PARSES) -> None:
        self.size = size
        self.hits = self.misses = 0
        self._parses: OrderedDict[str, str] = OrderedDict()
        self._faq: object = None
        self._lock = threading.Lock()

    def get(self, faq: object, text: str) -> dict[str, Any] | None:
        with self._lock:
            parse = self._parses.get(text) if faq is self._faq else None
            if parse is None:
                self.misses += 1
                return None
            self.hits += 1
            self._parses.move_to_end(text)
        return json.loads(parse)

    def put(self, faq: object, text: str, parse: dict[str, Any]) -> None:
        kept = json.dumps(parse, ensure_ascii=False)
        with self._lock:
            if faq is not self._faq:
                self._parses.clear()
                self._faq = faq
            self._parses[text] = kept
            if len(self._parses) > self.size:
                self._parses.popitem(last=False)


class BatchedParser:
    def __init__(self, model: TrainedModel, executor: ThreadPoolExecutor) -> None:
        self.model = model
        self.executor = executor
        self.cache = ParseCache()
        self._pending: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._running = False
        self.retrieval_bases = {i.split("/")[0] for i in model.faq.entries if "/" in i}

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        payload = parse_payload(text, language_hint or self.model.config.kefu.default_language)
        if payload is not None:
            return payload
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                texts = [t for t, _ in batch]
                try:
                    results = await loop.run_in_executor(self.executor, self.parse_now, texts)
                except Exception as exc:  # report to every waiter rather than hang them
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False

    def parse_now(self, texts: list[str]) -> list[dict[str, Any]]:
        """Blocking: NLU and FAQ top-k for a batch (runs in the worker thread), from the cache when asked lately."""
        faq = self.model.faq  # read once: a live knowledge update swaps it (Agent.use_faq), this batch keeps it
        parses: list[dict[str, Any] | None] = [self.cache.get(faq, text) for text in texts]
        new = list(dict.fromkeys(text for text, parse in zip(texts, parses, strict=True) if parse is None))
        if new:
            made = dict(zip(new, self._parse_new(faq, new), strict=True))
            for text, parse in made.items():
                self.cache.put(faq, text, parse)  # keeps a copy: `made` is the callers'
            handed: set[str] = set()
            for i, text in enumerate(texts):
                if parses[i] is None:  # the first asker gets the parse itself, one asking the same again a copy
                    parses[i] = copy.deepcopy(made[text]) if text in handed else made[text]
                    handed.add(text)
        return parses  # type: ignore[return-value]

    def _parse_new(self, faq: Any, texts: list[str]) -> list[dict[str, Any]]:
        """NLU and FAQ hits for new texts. A message that asks several things also gets `parse["parts"]`: each
        question with its own FAQ hits. The messages and their questions are embedded in one call (by the NLU's
        embedder) and searched in one batch. Traditional characters are read as simplified throughout, as the
        model's examples were."""
        n = len(texts)
        read = [mainland_chinese(text) for text in texts]
        split = [clauses(text) for text in read] if len(faq) else []
        asked = [(i, part) for i, parts in enumerate(split) if len(parts) > 1 for part in parts]
        queries = read + [part.text for _, part in asked]
        vectors = self.model.nlu.embedder.encode(queries) if len(faq) else None
        parses = self.model.nlu.parse_batch(texts, None if vectors is None else vectors[:n])
        if vectors is None:
            return [{**parse, "faq": []} for parse in parses]
        languages = [p.get("language") or self.model.config.kefu.default_language for p in parses]
        top_k = self.model.config.kefu.faq_top_k
        # a retrieval intent looks further down the list for its own answers
        pool = max(top_k, RETRIEVAL_POOL) if self.retrieval_bases else top_k
        hits = faq.search_batch(queries, languages + [languages[i] for i, _ in asked], k=pool, query_vectors=vectors)
        for parse, found in zip(parses, hits[:n], strict=True):
            base = (parse.get("intent") or {}).get("name")
            if base in self.retrieval_bases:  # Rasa retrieval intent: answer from its own responses only
                found = [h for h in found if h.id.startswith(base + "/")]
            parse["faq"] = [h.as_dict() for h in found[:top_k]]
        for (i, part), found in zip(asked, hits[n:], strict=True):
            parses[i].setdefault("parts", []).append({"text": part.text, "asks": part.asks, "elliptic": part.elliptic,
                                                      "faq": [h.as_dict() for h in found[:top_k]]})
        return parses
