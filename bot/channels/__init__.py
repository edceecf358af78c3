"""Channels: each turns its platform's messages into `UserMessage`s and renders the events that come back."""
