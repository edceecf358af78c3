"""Mail that no person wrote, which the bot must never answer (RFC 3834; no mail loops): it is recorded in its
conversation and left there. Returns the reason, for the record and the log."""

from __future__ import annotations

import re

from bot.channels.email.parse import ParsedMail

_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+-].*)?@", re.I)
_OUT_OF_OFFICE = re.compile(r"^\s*(auto(matic)?[ -]?reply|out of (the )?office|away from|vacation|自动回复|"
                            r"自動回覆|休假|不在办公室)\b", re.I)


def automatic_reason(mail: ParsedMail, own_addresses: set[str], own_id_marker: str) -> str | None:
    """Why this mail is automatic (or ours), None when a person wrote it."""
    headers = mail.headers
    if mail.sender in own_addresses:
        return "own_address"
    if own_id_marker in mail.message_id:
        return "own_message"
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if headers.get("precedence", "").strip().lower() in ("bulk", "list", "junk", "auto_reply"):
        return "precedence"
    if headers.get("x-autoreply") or headers.get("x-autorespond"):
        return "autoreply_header"
    if not mail.sender or _DAEMONS.match(mail.sender):
        return "mailer_daemon"
    if mail.content_type == "multipart/report" or "report-type" in headers.get("content-type", "").lower():
        return "delivery_report"
    if _OUT_OF_OFFICE.match(mail.subject):
        return "out_of_office"
    return None
