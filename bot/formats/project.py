"""A whole bot project — config.yml, domain.yml (file or folder) and data/ — loaded and checked as one."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Config, load_config
from bot.formats.domain import DEFAULT_ACTIONS, DEFAULT_INTENTS, Domain, parse_domain
from bot.formats.faq_data import FAQEntry, parse_faq
from bot.formats.nlu_data import NLUData, parse_nlu
from bot.formats.stories import Step, Story, parse_stories
from bot.formats.yaml_io import DataError, line_of, load_yaml

log = logging.getLogger(__name__)

YAML_SUFFIXES = {".yml", ".yaml"}
DATA_KEYS = {"version", "nlu", "rules", "stories", "responses", "faq"}


@dataclass
class Project:
    config: Config
    domain: Domain
    nlu: NLUData = field(default_factory=NLUData)
    rules: list[Story] = field(default_factory=list)
    stories: list[Story] = field(default_factory=list)
    faq: list[FAQEntry] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file read, for the fingerprint

    def fingerprint(self, extra: str = "") -> str:
        """Changes when any file that shapes the model changes (content, not mtime)."""
        digest = hashlib.sha256(extra.encode())
        for path in sorted(self.files):
            digest.update(str(path.name).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()


def yaml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    return []


def load_domain(path: Path) -> tuple[Domain, list[Path]]:
    files = yaml_files(path)
    if not files:
        raise DataError("domain file not found (pass --domain)", path)
    domain = Domain()
    for file in files:
        domain.merge(parse_domain(load_yaml(file), str(file)))
    return domain, files


def load_data(
    paths: list[Path], domain: Domain
) -> tuple[NLUData, list[Story], list[Story], list[FAQEntry], list[Path]]:
    nlu, rules, stories, faq, files = NLUData(), [], [], [], []
    for root in paths:
        if not root.exists():
            raise DataError("training data path not found (pass --data)", root)
        for file in yaml_files(root):
            content = load_yaml(file)
            if content is None:
                continue
            if not isinstance(content, dict):
                raise DataError("a training data file must be a mapping (nlu:, rules:, stories:, faq:)", file,
                                line_of(content))
            if not DATA_KEYS & set(content):
                continue  # not training data (e.g. a demo-shop data file)
            files.append(file)
            name = str(file)
            nlu.merge(parse_nlu(content.get("nlu"), name))
            rules.extend(parse_stories(content.get("rules"), name, "rules"))
            stories.extend(parse_stories(content.get("stories"), name, "stories"))
            faq.extend(parse_faq(content.get("faq"), name))
            if content.get("responses"):
                extra = parse_domain({"responses": content["responses"]}, name)
                domain.responses.update(extra.responses)
    return nlu, rules, stories, faq, files


def load_project(config_path: Path, domain_path: Path, data_paths: list[Path]) -> Project:
    config = load_config(config_path)
    domain, domain_files = load_domain(domain_path)
    nlu, rules, stories, faq, data_files = load_data(data_paths, domain)
    project = Project(config, domain, nlu, rules, stories, faq)
    project.files = [p for p in [config_path] if p.exists()] + domain_files + data_files
    validate(project)
    return project


def _iter_steps(steps: list[Step]):
    for step in steps:
        if step.kind == "or":
            yield from step.alternatives
        else:
            yield step


SUPPORTED_POLICIES = {"RulePolicy", "MemoizationPolicy", "AugmentedMemoizationPolicy", "TEDPolicy"}
REMOVED_POLICIES = {"FormPolicy", "MappingPolicy", "FallbackPolicy", "TwoStageFallbackPolicy"}  # Rasa 2 only


def refuse_unsupported(project: Project) -> None:
    """Rasa features kefu does not implement fail training with their name, rather than predict wrongly later."""
    for policy in project.config.policies or []:
        name = str(policy.get("name")) if isinstance(policy, dict) else str(policy)
        if name in REMOVED_POLICIES:
            raise DataError(f"policy {name!r} was removed in Rasa 3 (RulePolicy does its work); kefu follows Rasa 3",
                            "config.yml")
        if name not in SUPPORTED_POLICIES:
            supported = ", ".join(sorted(SUPPORTED_POLICIES))
            raise DataError(f"policy {name!r} is not supported by kefu (it runs {supported}; TEDPolicy is stood in "
                            "for by kefu's learned policy)", "config.yml")
    for story in project.stories:
        path, _, _ = story.source.rpartition(":")
        for step in _iter_steps(story.steps):
            if step.kind == "bot" or (step.kind == "user" and not step.intent):
                raise DataError(f"story {story.name!r}: end-to-end training stories (a user text without an intent, "
                                "or a bot: text) are not supported by kefu; give each user step its intent",
                                path, step.line)
    for slot in project.domain.slots.values():
        if "." in slot.type:
            raise DataError(f"slot {slot.name!r}: custom slot types ({slot.type}) are not supported by kefu; use one "
                            "of text, bool, categorical, float, list, any",
                            *_source(project.domain, f"slots:{slot.name}"))


def validate(project: Project) -> None:
    """Cross-file checks that Rasa users know from `rasa data validate`; the first problem is raised."""
    refuse_unsupported(project)
    domain = project.domain
    intents = set(domain.all_intents) | ({"faq"} if project.faq else set())
    actions = set(domain.action_names)
    unlisted = sorted({e.base_intent for e in project.nlu.examples} - intents) if domain.intents else []
    if unlisted:  # Rasa trains on them and warns; so do we
        log.warning("intents with NLU examples but not under 'intents' in the domain: %s", ", ".join(unlisted))
    for story in project.rules + project.stories:
        path, _, _ = story.source.rpartition(":")
        for step in _iter_steps(story.condition + story.steps):
            if step.kind == "user" and step.intent and step.intent.split("/")[0] not in intents:
                raise DataError(
                    f"{'rule' if story.is_rule else 'story'} {story.name!r} uses intent {step.intent!r}, which is "
                    "not in the domain: add it under 'intents' in domain.yml",
                    path,
                    step.line,
                )
            if step.kind == "action" and step.action not in actions and not _is_retrieval_action(step.action, project):
                hint = ("add a response for it under 'responses' in domain.yml" if step.action.startswith("utter_")
                        else "list it under 'actions' in domain.yml")
                raise DataError(
                    f"{'rule' if story.is_rule else 'story'} {story.name!r} uses action {step.action!r}, which the "
                    f"domain does not define: {hint}",
                    path,
                    step.line,
                )
            if step.kind == "active_loop" and step.loop and step.loop not in domain.forms and step.loop not in actions:
                raise DataError(f"active_loop {step.loop!r} is not a form in the domain", path, step.line)
    for action in domain.actions:
        if action.startswith("utter_") and action not in domain.responses and not _is_retrieval_action(action, project):
            raise DataError(
                f"action {action!r} has no response: add '{action}:' under 'responses'",
                *_source(domain, f"actions:{action}"),
            )
    for form in domain.forms.values():
        for slot in form.required_slots:
            if slot not in domain.slots:
                raise DataError(f"form {form.name!r} requires slot {slot!r}, which is not under 'slots'",
                                *_source(domain, f"forms:{form.name}"))


def _source(domain: Domain, key: str) -> tuple[str, int | None]:
    path, _, line = domain.sources.get(key, "domain.yml:").rpartition(":")
    return path, int(line) if line.isdigit() else None


def _is_retrieval_action(action: str, project: Project) -> bool:
    """`utter_faq` answers the retrieval intent `faq/...` (Rasa's ResponseSelector convention)."""
    if not action.startswith("utter_"):
        return False
    base = action.removeprefix("utter_")
    return any(e.base_intent == base and "/" in e.intent for e in project.nlu.examples) or (
        base == "faq" and bool(project.faq)
    )


__all__ = ["DEFAULT_ACTIONS", "DEFAULT_INTENTS", "Project", "load_project"]
