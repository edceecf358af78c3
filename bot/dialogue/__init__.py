"""Dialogue: events, trackers, policies, forms and the escalation decision."""
