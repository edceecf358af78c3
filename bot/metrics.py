"""Prometheus metrics, in a registry owned by the app (so tests and workers don't share globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("kefu_messages_total", "Shopper messages received", ["channel"],
                                registry=self.registry)
        self.handoffs = Counter("kefu_handoffs_total", "Conversations handed to a person", ["reason"],
                                registry=self.registry)
        self.turn_seconds = Histogram("kefu_turn_seconds", "Time from message received to answer stored",
                                      registry=self.registry,
                                      buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def render(self) -> bytes:
        return generate_latest(self.registry)
