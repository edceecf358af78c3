"""Channels: each turns its platform's messages into `UserMessage`s and renders the events that come back
(base.py: the one interface; registry.py: the list; settings.py: where their settings come from)."""
