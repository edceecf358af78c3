"""NLU + FAQ search off the event loop, batching messages that arrive while a batch is running.

One message alone runs at once (no added wait); under load, everything that queued up during the previous
batch is embedded in one forward pass, which costs far less per message.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import strict_json
from bot.language import LANGUAGES
from bot.model import TrainedModel
from bot.nlu.clauses import clauses
from bot.nlu.embedder import CACHED_BATCH, embedder_for

# Rasa's payload syntax for buttons: /intent or /intent{"entity": "value"}
_PAYLOAD = re.compile(r"^/(?P<intent>[\w./-]+)(?P<entities>\{.*\})?$", re.DOTALL)
MAX_BATCH = CACHED_BATCH
RETRIEVAL_POOL = 20  # FAQ hits searched, so a retrieval intent still finds its own answers


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


class BatchedParser:
    def __init__(self, model: TrainedModel, executor: ThreadPoolExecutor) -> None:
        self.model = model
        self.executor = executor
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
        """Blocking: NLU and FAQ top-k for a batch (runs in the worker thread)."""
        faq = self.model.faq  # read once: a live knowledge update swaps it (Agent.use_faq), this batch keeps it
        parses = self.model.nlu.parse_batch(texts)
        languages = [p.get("language") or self.model.config.kefu.default_language for p in parses]
        vectors = embedder_for(self.model.config.kefu.embedding).encode(texts) if len(faq) else None
        top_k = self.model.config.kefu.faq_top_k
        hits = faq.search_batch(texts, languages, k=max(top_k, RETRIEVAL_POOL), query_vectors=vectors)
        for parse, found in zip(parses, hits, strict=True):
            base = (parse.get("intent") or {}).get("name")
            if base in self.retrieval_bases:  # Rasa retrieval intent: answer from its own responses only
                found = [h for h in found if h.id.startswith(base + "/")]
            parse["faq"] = [h.as_dict() for h in found[:top_k]]
        self._search_parts(faq, texts, languages, parses)
        return parses

    def _search_parts(self, faq: Any, texts: list[str], languages: list[str], parses: list[dict[str, Any]]) -> None:
        """A message that asks several things gets `parse["parts"]`: each question with its own FAQ hits."""
        if not len(faq):
            return
        split = [clauses(text) for text in texts]
        asked = [(i, part) for i, parts in enumerate(split) if len(parts) > 1 for part in parts]
        if not asked:
            return
        found = faq.search_batch([part.text for _, part in asked], [languages[i] for i, _ in asked],
                                 k=self.model.config.kefu.faq_top_k)
        for (i, part), hits in zip(asked, found, strict=True):
            parses[i].setdefault("parts", []).append(
                {"text": part.text, "asks": part.asks, "faq": [h.as_dict() for h in hits]})
