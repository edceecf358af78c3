"""What the bot and the agent read of a mail: the new text only, without the quoted history below (or above)
it and without the signature. The full original stays in the stored event's metadata.

The markers are the ones mail clients write: "> " lines, "On … wrote:", "在 … 写道：", Outlook's
"-----Original Message-----" / "From: … Sent: …" block, Foxmail / QQ Mail's "----- 原始邮件 -----",
the "-- " signature separator and the phone clients' "Sent from my iPhone" / "发自我的iPhone".
"""

from __future__ import annotations

import re

_CUT_AT = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I | re.S),
    re.compile(r"^\s*在.{0,200}(写道|寫道)[:：]\s*$", re.S),
    re.compile(r"^\s*-{2,}\s*(Original Message|Forwarded message|原始邮件|原始郵件|转发的邮件)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: … Sent: …"
    re.compile(r"^\s*(From|发件人|寄件者)\s*[:：].+$", re.I),  # a header block of a quoted mail...
    re.compile(r"^-- ?$"),  # the signature separator
    re.compile(r"^\s*(Sent from my \w+|Get Outlook for \w+|发自我的\s*\w+|来自我的\s*\w+|从我的\s*\w+\s*发送)", re.I),
]
_HEADER_BLOCK = re.compile(r"^\s*(Sent|Date|To|Subject|发送时间|日期|收件人|主题|時間|主旨)\s*[:：]", re.I)


def new_text(text: str) -> str:
    """The part of a mail's text the sender wrote now; the whole text if that would leave nothing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        joined = " ".join(lines[index:index + 2])  # "On Mon, … <a@b>\nwrote:" split over two lines
        if line.lstrip().startswith(">"):
            continue
        if _is_cut(line, lines[index + 1:index + 4]) or (index + 1 < len(lines) and _is_wrote(joined)):
            break
        kept.append(line)
    result = _without_sign_off("\n".join(kept).strip())
    return result or text.strip()


_VALEDICTION = re.compile(r"^(thanks?( you)?|many thanks|cheers|best( regards| wishes)?|regards|kind regards|"
                          r"sincerely|谢谢|多谢|感谢|祝好|此致|敬礼|顺祝商祺)\W*$", re.I)
_NAME = re.compile(r"^([\u4e00-\u9fff]{2,4}|[A-Z][a-z]+( [A-Z][a-z]+)?)$")


def _without_sign_off(text: str) -> str:
    """Without the last paragraph when it is only a sign-off ("Thanks,\nBob", "张三"): it says nothing the bot
    could answer and pulls a short question's meaning away."""
    paragraphs = re.split(r"\n\s*\n", text)
    if len(paragraphs) < 2:
        return text
    lines = [line.strip().rstrip(",，") for line in paragraphs[-1].splitlines() if line.strip()]
    if 0 < len(lines) <= 2 and all(_VALEDICTION.match(line) or _NAME.match(line) for line in lines):
        return "\n\n".join(paragraphs[:-1]).strip()
    return text


def _is_wrote(joined: str) -> bool:
    return bool(_CUT_AT[0].match(joined) or _CUT_AT[1].match(joined))


def _is_cut(line: str, following: list[str]) -> bool:
    for number, pattern in enumerate(_CUT_AT):
        if pattern.match(line):
            if number == 4:  # "From:" cuts only when a quoted header block follows it
                return any(_HEADER_BLOCK.match(next_line) for next_line in following)
            return True
    return False
