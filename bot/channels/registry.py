"""Every channel kefu has, in one list: `create_app` mounts each configured one (adding a channel is one folder
and one line here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.channels.base import Channel
from bot.channels.email import EmailChannel
from bot.channels.messenger import MessengerChannel
from bot.channels.rest import RestChannel
from bot.channels.settings import ConfigError, load_settings
from bot.channels.wechat import WeChatChannel
from bot.channels.widget import WidgetChannel

CHANNELS: tuple[type[Channel[Any, Any, Any]], ...] = (RestChannel, WidgetChannel, WeChatChannel, MessengerChannel,
                                                      EmailChannel)


def owner_of(conversation_id: str) -> str | None:
    """The channel whose conversation this id names (by its prefix, in any case), None for a REST id."""
    lowered = conversation_id.lower()
    return next((kind.name for kind in CHANNELS
                 if kind.conversation_prefix and lowered.startswith(kind.conversation_prefix.lower())), None)


def mount_channels(app: web.Application, configured: Mapping[str, Mapping[str, Any] | None],
                   environ: Mapping[str, str] | None = None) -> list[Channel[Any, Any, Any]]:
    """Mount every channel whose settings (`channels:` in endpoints.yml, environment variables) are there;
    a partly configured channel, or a name that is no channel, is a ConfigError."""
    names = {channel.name for channel in CHANNELS}
    unknown = sorted(set(configured) - names)
    if unknown:
        raise ConfigError(f"endpoints.yml channels: {', '.join(unknown)} is not a channel "
                          f"(there are {', '.join(sorted(names))})")
    mounted = []
    for kind in CHANNELS:
        settings = load_settings(kind, configured.get(kind.name), environ)
        if settings is not None:
            channel = kind(settings)
            channel.mount(app)
            mounted.append(channel)
    return mounted
