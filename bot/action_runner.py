"""Custom actions (rasa-sdk): run in-process by default, or on a Rasa-protocol action server.

The same action code works both ways; the engine only sees `events` and `responses`, as in Rasa's protocol.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.dialogue.tracker import Tracker
from bot.formats.domain import Domain

log = logging.getLogger(__name__)


class ActionError(RuntimeError):
    """A custom action failed or does not exist; the conversation carries on with a fallback."""


@dataclass
class ActionResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)


class ActionRunner(Protocol):
    def knows(self, name: str) -> bool: ...

    async def run(self, name: str, tracker: Tracker, domain: Domain) -> ActionResult: ...


def action_call(name: str, tracker: Tracker, domain: Domain) -> dict[str, Any]:
    """The request body of Rasa's action server protocol."""
    return {
        "next_action": name,
        "sender_id": tracker.sender_id,
        "tracker": tracker.as_rasa_dict(),
        "domain": domain.as_dict(),
        "version": "3.6.0",
    }


class InProcessActionRunner:
    """Runs the project's `actions` package with rasa-sdk's executor inside the bot process."""

    def __init__(self, project_dir: Path, package: str = "actions") -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        self.package = package
        self.loaded = False
        if (project_dir / package).exists() or (project_dir / f"{package}.py").exists():
            if str(project_dir) not in sys.path:
                sys.path.insert(0, str(project_dir))
            importlib.invalidate_caches()
            self.executor.register_package(package)
            self.loaded = True

    def knows(self, name: str) -> bool:
        return name in self.executor.actions

    async def run(self, name: str, tracker: Tracker, domain: Domain) -> ActionResult:
        if not self.knows(name):
            raise ActionError(f"custom action {name!r} is not defined in the project's {self.package}/ package")
        try:
            result = await self.executor.run(action_call(name, tracker, domain))
        except Exception as exc:  # the action's own bug must not take the conversation down
            log.exception("custom action %s failed", name)
            raise ActionError(f"custom action {name!r} failed: {exc}") from exc
        if result is None:
            return ActionResult()
        return ActionResult(list(result.events), list(result.responses))


class RemoteActionRunner:
    """Calls a Rasa-protocol action server (`action_endpoint` in endpoints.yml, or `kefu actions`)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def knows(self, name: str) -> bool:
        return True  # the server decides; unknown actions come back as 404

    async def run(self, name: str, tracker: Tracker, domain: Domain) -> ActionResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.post(self.url, json=action_call(name, tracker, domain)) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    raise ActionError(f"action server answered {resp.status} for {name!r}: {body}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ActionError(f"action server at {self.url} failed for {name!r}: {exc}") from exc
        return ActionResult(body.get("events") or [], body.get("responses") or [])

    async def close(self) -> None:
        if self._session:
            await self._session.close()
