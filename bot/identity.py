"""Who a shopper says they are: a message's `customer_id` counts only with proof.

The order, return and ticket actions show a customer's orders to whoever the message metadata names as
`customer_id` (actions/identity.py), so the claim needs proof, as in Chatwoot's identity validation: the shop's
backend, which knows who is signed in, signs the id with a secret shared with kefu,
`identifier_hash = HMAC-SHA256(KEFU_IDENTITY_SECRET, customer_id)` in hex, and the page or backend sends both.
`Agent.handle` applies this to every message of every channel, so no channel can forget it: an id without a
valid hash is dropped (the shopper is then asked for the phone number or e-mail on the order), and the hash
itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

SECRET_ENV = "KEFU_IDENTITY_SECRET"
MAX_ID_CHARS = 128


def identifier_hash(secret: str, customer_id: str) -> str:
    """What the shop's backend computes for a signed-in shopper (hex HMAC-SHA256 of the id)."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


class IdentityCheck:
    """Keeps `customer_id` in message metadata only when `identifier_hash` proves it; never without a secret."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or None

    def __repr__(self) -> str:
        return f"IdentityCheck(secret={'set' if self._secret else 'unset'})"  # never the secret itself

    def verified(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """A copy of metadata without `identifier_hash`, and with `customer_id` only if that hash proves it."""
        claimed, proof = metadata.get("customer_id"), metadata.get("identifier_hash")
        kept = {k: v for k, v in metadata.items() if k not in ("customer_id", "identifier_hash")}
        if self.proves(claimed, proof):
            kept["customer_id"] = claimed
        return kept

    def proves(self, customer_id: object, proof: object) -> bool:
        if not (self._secret and isinstance(customer_id, str) and isinstance(proof, str)):
            return False
        if not customer_id or len(customer_id) > MAX_ID_CHARS or not proof.isascii():
            return False
        return hmac.compare_digest(identifier_hash(self._secret, customer_id), proof.lower())
