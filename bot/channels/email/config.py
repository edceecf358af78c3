"""E-mail settings (README "E-mail"): `channels.email` in endpoints.yml and `EMAIL_*` environment variables
(`EMAIL_IMAP_PASSWORD` → `imap_password`), read by `bot/channels/settings.py` and checked at start: a missing
or invalid value is one `ConfigError` line naming the key, never a value. Passwords are `SecretStr`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.channels.push.channel import PushSettings

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


class EmailSettings(PushSettings):
    address: str  # EMAIL_ADDRESS: the support address shoppers write to (From: of every reply)
    imap_host: str  # EMAIL_IMAP_HOST
    imap_password: SecretStr  # EMAIL_IMAP_PASSWORD (an app password at Gmail / QQ / 163)
    smtp_host: str  # EMAIL_SMTP_HOST
    display_name: str = "客服 Customer Service"  # EMAIL_DISPLAY_NAME: the From: name
    imap_port: int = Field(993, ge=1, le=65535)
    imap_tls: bool = True  # implicit TLS (IMAPS, port 993); false only for a local test server
    imap_user: str | None = None  # defaults to `address`
    imap_folder: str = "INBOX"
    imap_idle: bool = True  # use IDLE when the server offers it; polling otherwise
    poll_interval_s: float = Field(30.0, gt=0)  # without IDLE
    idle_renew_s: float = Field(300.0, gt=0, le=29 * 60)  # IDLE is renewed (and the folder checked) this often
    imap_timeout_s: float = Field(30.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)  # the reader's backoff after a lost connection tops out here
    smtp_port: int = Field(465, ge=1, le=65535)
    smtp_tls: Literal["ssl", "starttls", "none"] = "ssl"
    smtp_user: str | None = None  # defaults to `address`; no login when smtp_password is not set
    smtp_password: SecretStr | None = None  # EMAIL_SMTP_PASSWORD (usually the same as the IMAP one)
    listen_port: int | None = Field(None, ge=0, le=65535)  # an SMTP server for a forwarding rule (None: off)
    listen_host: str = "127.0.0.1"
    signature: str = ""  # below every reply; default "<display name>"
    subject_token: bool = True  # "[#token]" in reply subjects: threads survive clients that drop headers
    max_mail_bytes: int = Field(25 * 1024 * 1024, gt=0)  # larger mail is not downloaded; the sender is told
    max_attachment_bytes: int = Field(10 * 1024 * 1024, gt=0)  # one attachment; larger ones are refused
    attachment_types: list[str] = Field(default_factory=lambda: list(UPLOAD_TYPES))
    max_conversation_uploads: int = Field(50, ge=1)
    max_conversation_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    upload_dir: Path = Path("uploads")  # the chat bubble's: the console shows both the same way
    ack_out_of_hours: bool = True  # a mail for a person outside business hours gets an acknowledgement
    send_attempts: int = Field(6, ge=1, le=20)  # 1 + 2 + 4 + … × retry_base_s, then shown to the agent
    retry_base_s: float = Field(2.0, ge=0)
    http_timeout_s: float = Field(30.0, gt=0)  # one SMTP exchange

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value.strip()):
            raise ValueError("is not an e-mail address")
        return value.strip().lower()

    @model_validator(mode="after")
    def _users(self) -> EmailSettings:
        if self.imap_user is None:
            object.__setattr__(self, "imap_user", self.address)
        if self.smtp_user is None:
            object.__setattr__(self, "smtp_user", self.address)
        return self

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def shop_signature(self) -> str:
        return self.signature or self.display_name
