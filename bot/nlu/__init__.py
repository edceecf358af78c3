"""Natural-language understanding: language, tokens, features, intents, entities."""
