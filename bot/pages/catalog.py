"""The FAQ as a shopper browses it: articles by category, most asked first, found by the bot's own FAQ search.

Both the help centre and the typing suggestions read it, so "运费" and "shipping fee" land on the same entry
in the page, in the bubble and in the bot's answer. It knows the FAQ only through the agent's public interface
(`Agent.faq_entries`, `Agent.search_faq`). Entries of Rasa retrieval intents (`chitchat/…`) are small talk, not
help articles, and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.agent import Agent
from bot.formats.faq_data import FAQEntry
from bot.pages.texts import category_label

MIN_SEARCH_SCORE = 0.3  # calibrated FAQ scores: below this the index is guessing
MIN_SUGGEST_SCORE = 0.5


@dataclass(frozen=True)
class Article:
    id: str
    category: str
    title: str  # the entry's display title in the page's language (`FAQEntry.title`), never a raw phrasing
    answer: str
    asked: int = 0


class FaqCatalog:
    def __init__(self, entries: list[FAQEntry]) -> None:
        self.entries = {e.id: e for e in entries if "/" not in e.id}
        self._order = {k: i for i, k in enumerate(self.entries)}

    def article(self, entry_id: str, language: str, counts: dict[str, int] | None = None) -> Article | None:
        entry = self.entries.get(entry_id)
        if entry is None:
            return None
        return Article(entry.id, entry.category, entry.title(language), entry.answer(language),
                       (counts or {}).get(entry.id, 0))

    def articles(self, language: str, counts: dict[str, int]) -> list[Article]:
        """Every article, most asked first (ties keep the FAQ file's order)."""
        ids = sorted(self.entries, key=lambda k: (-counts.get(k, 0), self._order[k]))
        return [a for a in (self.article(k, language, counts) for k in ids) if a]

    def most_asked(self, language: str, counts: dict[str, int], n: int = 5) -> list[Article]:
        return self.articles(language, counts)[:n]

    def categories(self, language: str, counts: dict[str, int]) -> list[tuple[str, str, list[Article]]]:
        """(category, label, articles most asked first), categories in the FAQ file's order."""
        groups: dict[str, list[Article]] = {}
        for entry in self.entries.values():
            groups.setdefault(entry.category, [])
        for article in self.articles(language, counts):
            groups[article.category].append(article)
        return [(c, category_label(c, language), items) for c, items in groups.items()]

    def related(self, article: Article, language: str, counts: dict[str, int], n: int = 4) -> list[Article]:
        return [a for a in self.articles(language, counts) if a.category == article.category and a.id != article.id][:n]

    def title_matches(self, text: str, language: str) -> list[str]:
        """Entries whose title has a word that starts with what was typed ("ship": "Shipping costs", not
        "Membership levels"; Chinese titles anywhere)."""
        needle = text.strip().lower()
        if len(needle) < 2:
            return []
        starts_a_word = re.compile(r"(?<![a-z0-9])" + re.escape(needle))
        return [k for k, e in self.entries.items() if starts_a_word.search(e.title(language).lower())]

    def phrase_matches(self, text: str, language: str) -> list[str]:
        """Entries with a stored phrasing that contains what the shopper typed (for instant suggestions)."""
        needle = text.strip().lower()
        if len(needle) < 2:
            return []
        return [k for k, e in self.entries.items()
                if any(needle in q.lower() for q in e.questions.get(language, []))]

    async def search(self, agent: Agent, text: str, k: int = 5) -> list[str]:
        """Entry ids for `text` in its own language, best first, as the bot searches."""
        hits = await agent.search_faq(text, k=2 * k)  # room for the small-talk entries left out
        return [h["id"] for h in hits if h["score"] >= MIN_SEARCH_SCORE and h["id"] in self.entries][:k]

    async def suggest(self, agent: Agent, text: str, language: str, counts: dict[str, int],
                      k: int = 5) -> list[Article]:
        """Questions to offer while the shopper types: the FAQ index's confident matches, best first, then
        entries whose title shows what was typed, then entries with a phrasing that contains it (so "ret"
        already offers returns), each group the ones the index finds closer first, then the most asked:
        "ship" offers shipping costs before gift wrap."""
        hits = await agent.search_faq(text, language, 4 * k)
        score = {h["id"]: h["score"] for h in hits}
        ids = [h["id"] for h in hits if h["score"] >= MIN_SUGGEST_SCORE and h["id"] in self.entries][:k]
        if len(ids) < k:
            def closer(entry_id: str) -> tuple[float, int, int]:
                return -score.get(entry_id, 0.0), -counts.get(entry_id, 0), self._order[entry_id]

            ids += sorted(self.title_matches(text, language), key=closer)
            ids += sorted(self.phrase_matches(text, language), key=closer)
        unique = list(dict.fromkeys(ids))[:k]
        return [a for a in (self.article(i, language, counts) for i in unique) if a]
