"""Custom actions of the kefu demo shop (rasa-sdk)."""
