"""kefu: the engine (NLU, FAQ retrieval, dialogue, channels, server, CLI)."""

__version__ = "0.3.0"
