"""`X-Hub-Signature-256` (docs/channels.md §2.3): HMAC-SHA256 of the exact raw body with the App Secret.

Checked before any JSON parsing and in constant time. The legacy SHA-1 `X-Hub-Signature` is never enough on
its own (it is what Rasa's connector checks, and SHA-1 alone is not proof we accept).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(app_secret: str, body: bytes) -> str:
    return _PREFIX + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(app_secret: str, body: bytes, header: str | None) -> bool:
    """True only for a `sha256=<hex>` header that matches the HMAC of these exact bytes."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().lower().encode())
