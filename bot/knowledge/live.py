"""This worker's FAQ on the newest published knowledge version, within about a second of its publication.

Every worker polls `knowledge:head` (one small read a second, the same on SQLite and Redis); a new version is
loaded, its index built off the event loop in a thread of its own (only the texts the current index has not
embedded are embedded, see FAQIndex.updated; many of them in a low-priority process, see builder.py) and
swapped in with one reference assignment (Agent.use_faq):
a turn that began on the old index finishes on it, the next one starts on the new.

Which wins, the trained model's FAQ (data/faq.yml at `kefu train`) or the store's live version: the newer.
A version published after the model was trained is served; a model trained after the newest publication serves
its own FAQ until the next publication (so `kefu train` from an edited YAML takes effect, and editing in the
console afterwards starts from what the bot serves).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import tasks
from bot.knowledge.builder import Builder
from bot.knowledge.versions import KnowledgeVersions, LiveEntry, Version, live_wins

log = logging.getLogger(__name__)
POLL_S = 1.0


class LiveKnowledge:
    def __init__(self, agent: Any, versions: KnowledgeVersions, poll_s: float = POLL_S) -> None:
        self.agent = agent  # bot.agent.Agent (not imported: the agent knows nothing of this module)
        self.versions = versions
        self.poll_s = poll_s
        self.trained = [LiveEntry(e) for e in agent.faq_entries()]
        self.trained_at = float(agent.model.trained_at or 0.0)
        self.version: Version | None = None  # what this worker serves; None: the trained model's own FAQ
        self.head = 0  # the newest published version this worker has seen (edits are based on it)
        self.build_seconds: float | None = None
        self._lock = asyncio.Lock()
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-knowledge")
        self.prepare = Builder(agent.model.config.kefu.embedding, agent.model.faq.prepare_texts)
        self._task: asyncio.Task[None] | None = None

    @property
    def number(self) -> int:
        """The version served (0: the trained model's FAQ)."""
        return self.version.number if self.version else 0

    def entries(self) -> list[LiveEntry]:
        """The entries served, disabled ones included."""
        return list(self.version.entries) if self.version else list(self.trained)

    async def start(self) -> None:
        await self.refresh()
        loop = asyncio.get_running_loop()
        if self.version is None:  # the first publication then costs what the next ones do (FAQIndex.updated)
            loop.run_in_executor(self._builder, self.agent.model.faq.prepare_updates)
        self._task = loop.create_task(self._poll(), name="kefu-knowledge-poll")

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._builder.shutdown(wait=False, cancel_futures=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store away for a moment, a broken version: keep serving, try again
                log.exception("could not load the newest knowledge version")

    async def refresh(self) -> bool:
        """Serve the newest published version if this worker does not yet and it is newer than the model;
        True when the index was swapped."""
        head, at = await self.versions.head_at()
        if head <= self.head:
            return False
        async with self._lock:
            if head <= self.head:
                return False
            if not live_wins(at, self.trained_at):
                log.info("knowledge version %d is older than the trained model: the model's FAQ is served", head)
                self.head = head
                return False
            version = await self.versions.load(head)
            if version is None:
                return False
            loop = asyncio.get_running_loop()
            started = loop.time()
            index = await loop.run_in_executor(self._builder, self.agent.model.faq.updated, version.serving(),
                                               self.prepare)
            self.build_seconds = loop.time() - started
            self.agent.use_faq(index)
            self.version, self.head = version, head
            log.info("knowledge version %d served (%d entries, %d texts embedded, %.2f s)", head,
                     len(index), index.embedded, self.build_seconds)
            return True

    async def candidate(self, entries: list[LiveEntry]) -> Any:
        """The index these entries would give (for a preview), built like a publication's but not served."""
        serving = [e.entry for e in entries if not e.disabled]
        return await asyncio.get_running_loop().run_in_executor(self._builder, self.agent.model.faq.updated, serving,
                                                                self.prepare)

    async def publish(self, entries: list[LiveEntry], author: str, summary: str,
                      based_on: int | None = None) -> Version:
        """Store a new version and serve it on this worker before returning (the others follow by polling).
        `based_on`: the version the editor saw; PublishConflict if another was published since."""
        await self.refresh()
        version = await self.versions.publish(entries, author, summary, self.head if based_on is None else based_on,
                                              previous=self.entries())
        await self.refresh()
        return version

    async def rollback(self, number: int, author: str) -> Version:
        """Publish version `number`'s entries again, as a new version (history only grows)."""
        if number == 0:
            return await self.publish(self.trained, author, "roll back to the trained model's FAQ")
        old = await self.versions.load(number)
        if old is None:
            raise LookupError(f"there is no knowledge version {number}")
        return await self.publish(old.entries, author, f"roll back to version {number}")

