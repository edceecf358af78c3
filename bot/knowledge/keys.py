"""Typed keys for what the knowledge side keeps on the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from bot.knowledge.live import LiveKnowledge
from bot.knowledge.usage import Usage

KNOWLEDGE: web.AppKey[LiveKnowledge] = web.AppKey("knowledge")
USAGE: web.AppKey[Usage] = web.AppKey("knowledge_usage")
