"""The live knowledge as data/faq.yml, and back (`kefu faq export`, `kefu faq import`).

Export writes entries in the version's order (the file's own order; entries added in the console at the end),
each key in the file's order, so two exports of one version are identical and a diff shows only what changed.
Comments are kept where the new file has a place for them, without a round-tripping YAML library: the template
file's text before `faq:` (its header comments, `version:` and `policies:`) is kept verbatim, and the comment
lines right above an entry go above the same entry again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from bot.formats.yaml_io import DataError, load_yaml_text
from bot.knowledge.entries import as_item, parse_entry
from bot.knowledge.versions import LiveEntry

_FAQ_KEY = re.compile(r"^faq:[ \t]*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^  - id:\s*['\"]?([^'\"\s#]+)")


def dump(entries: list[LiveEntry], template: str | None = None) -> str:
    """data/faq.yml's text for `entries`; `template` (an earlier faq.yml) gives the head and the comments."""
    head, comments = _template_parts(template) if template else ('version: "1"\n\n', {})
    out = [head, "faq:\n"]
    for i, live in enumerate(entries):
        if i:
            out.append("\n")
        out.extend(comments.get(live.id, []))
        out.append(_entry_text(as_item(live)))
    return "".join(out)


def _entry_text(item: dict[str, Any]) -> str:
    """One entry in the file's own style: title and tags on one line, one phrasing a line, answers quoted."""
    lines = [f"  - id: {_scalar(item['id'])}", f"    category: {_scalar(item['category'])}"]
    if "title" in item:
        lines.append("    title: {" + ", ".join(f"{lang}: {_quoted(t)}" for lang, t in item["title"].items()) + "}")
    if "tags" in item:
        lines.append("    tags: " + _flow(item["tags"]))
    lines.append("    questions:")
    for lang, phrasings in item["questions"].items():
        lines.append(f"      {lang}:")
        lines.extend(f"        - {_scalar(q)}" for q in phrasings)
    lines.append("    answer:")
    lines.extend(f"      {lang}: {_quoted(text)}" for lang, text in item["answer"].items())
    if item.get("disabled"):
        lines.append("    disabled: true")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """Plain when YAML reads it back as the same string, else quoted."""
    dumped = yaml.safe_dump(text, allow_unicode=True, width=10**6, default_style=None)
    return dumped.removesuffix("\n").removesuffix("\n...")


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _flow(values: list[str]) -> str:
    return yaml.safe_dump(values, allow_unicode=True, width=10**6, default_flow_style=True).strip()


def _template_parts(text: str) -> tuple[str, dict[str, list[str]]]:
    match = _FAQ_KEY.search(text)
    if match is None:
        return text.rstrip("\n") + "\n\n", {}
    head = text[: match.start()]
    comments: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in text[match.end():].splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(line if line.endswith("\n") else line + "\n")
        elif item := _ITEM.match(line):
            if pending:
                comments[item.group(1)] = pending
            pending = []
        elif stripped:
            pending = []  # a comment inside an entry stays behind (it has no place in a dumped entry)
    return head, comments


def load(text: str, path: str) -> list[LiveEntry]:
    """The entries of a faq.yml, each checked by `parse_entry`; DataError names the file and the entry's line."""
    data = load_yaml_text(text, path)
    if not isinstance(data, dict) or not isinstance(data.get("faq"), list):
        raise DataError("an FAQ file has a 'faq:' list of entries (data/faq.yml's format)", path)
    entries: list[LiveEntry] = []
    seen: set[str] = set()
    for item in data["faq"]:
        where = f"{path}:{getattr(item, 'line', '?')}"
        live = parse_entry(_plain(item), where)
        if live.id in seen:
            raise DataError(f"FAQ id {live.id!r} is used twice", where)
        seen.add(live.id)
        entries.append(live)
    return entries


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read(path: Path) -> list[LiveEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file ({exc})", path) from None
    return load(text, str(path))
