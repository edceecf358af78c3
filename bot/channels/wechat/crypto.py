"""WeChat push signatures and safe-mode (AES) message encryption (docs/channels.md §1.2, §1.5).

Written against the protocol, not wechatpy: padding is validated, comparisons are constant-time, and the
16 random bytes can be injected so Appendix A vectors reproduce exactly. Receive-id agnostic (AppID for an
Official Account, CorpID for WeCom).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16: the classic interop bug


class DecryptError(ValueError):
    """The ciphertext is not a message for us (bad base64, padding, length or receive-id)."""


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """sha1 of the sorted, concatenated strings: `signature` (3 parts) and `msg_signature` (+ Encrypt)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *extra])).encode("utf-8")).hexdigest()


def signature_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().lower().encode())


class MessageCipher:
    """AES-256-CBC with IV = key[:16], PKCS#7 to 32 bytes, plaintext = random16 ‖ len ‖ msg ‖ receive_id."""

    def __init__(self, encoding_aes_key: str, receive_id: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ValueError("EncodingAESKey is not 43 base64 characters") from None
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._key = key
        self._receive_id = receive_id.encode("utf-8")

    def __repr__(self) -> str:
        return "MessageCipher(<key hidden>)"

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        random16 = os.urandom(16) if random16 is None else random16
        if len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        body = message.encode("utf-8")
        plain = random16 + struct.pack(">I", len(body)) + body + self._receive_id
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise DecryptError("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise DecryptError("too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(body) != length or not hmac.compare_digest(receive_id, self._receive_id):
            raise DecryptError("not addressed to this account")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("message is not UTF-8") from None
