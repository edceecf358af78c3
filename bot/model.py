"""Trained model archives: `models/<timestamp>.tar.gz`, with a fingerprint of the project.

An archive holds the domain, the policies, the NLU pipeline and the FAQ index. It is written under a temporary
name, fsynced, then renamed, so a crash never leaves a half-written archive under an archive's name. Loading a
corrupt one anyway (a copy cut short) fails with a message that says so; `kefu run` then serves the newest one
that loads. An unchanged project is not retrained.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import __version__
from bot.config import Config
from bot.dialogue.learned import LearnedPolicy
from bot.dialogue.policies import MemoizationPolicy, RulePolicy
from bot.durable import fsync_path
from bot.formats.domain import Domain, Slot
from bot.formats.faq_data import FAQEntry, entries_from_retrieval_intents
from bot.formats.nlu_data import Example, NLUData
from bot.formats.project import Project

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".tar.gz"


class ModelError(RuntimeError):
    """A model archive is missing, corrupt or from an incompatible version."""


@dataclass
class TrainedModel:
    config: Config
    domain: Domain
    nlu: Any  # bot.nlu.pipeline.NLUPipeline
    faq: Any  # bot.faq.index.FAQIndex
    rules: RulePolicy
    memo: MemoizationPolicy
    fingerprint: str
    path: Path | None = None
    trained_at: float = 0.0
    learned: LearnedPolicy | None = None  # when config.yml asks for TEDPolicy or lists no policies


def fingerprint_of(project: Project) -> str:
    """The project's files, kefu's version and the encoders with their defaults (a new default retrains)."""
    return project.fingerprint(extra=f"kefu {__version__}; {project.config.kefu.embedding.describe()}")


def archives(models_dir: Path) -> list[Path]:
    """Complete archives, newest first (temporary files of an interrupted training are ignored)."""
    if not models_dir.is_dir():
        return []
    found = [p for p in models_dir.glob(f"*{ARCHIVE_SUFFIX}") if not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.name, reverse=True)


def latest_archive(models_dir: Path) -> Path | None:
    found = archives(models_dir)
    return found[0] if found else None


def archive_fingerprint(path: Path) -> str | None:
    """The project fingerprint an archive was trained from; None when this kefu cannot use it."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile("metadata.json")
            metadata = json.load(member) if member else {}
        Config.model_validate(metadata["config"])  # settings of an older kefu → retrain
        return metadata["fingerprint"]
    except (OSError, tarfile.TarError, KeyError, ValueError, EOFError):
        return None


def _nlu_data_with_faq(project: Project) -> NLUData:
    """FAQ questions train the intent `faq`, so the classifier knows when a shopper is asking one."""
    data = NLUData(list(project.nlu.examples), dict(project.nlu.synonyms), dict(project.nlu.regexes),
                   dict(project.nlu.lookups))
    for entry in project.faq:
        for phrasings in entry.questions.values():
            data.examples.extend(Example(q, "faq", [], entry.source) for q in phrasings)
    return data


def faq_entries(project: Project) -> list[FAQEntry]:
    from bot.language import detect_language

    retrieval = [(e.intent, e.text) for e in project.nlu.examples if "/" in e.intent]
    return project.faq + entries_from_retrieval_intents(retrieval, project.domain.responses, detect_language)


def domain_for_runtime(domain: Domain) -> Domain:
    """Rasa adds `requested_slot` when the domain has forms; unless the domain declares it, it does not
    influence the conversation (as in Rasa, so stories need not spell out which question a form asked)."""
    if domain.forms and "requested_slot" not in domain.slots:
        required = sorted({s for f in domain.forms.values() for s in f.required_slots})
        domain.slots["requested_slot"] = Slot("requested_slot", "categorical", values=required,
                                              influence_conversation=False)
    return domain


def learned_policy(config: Config) -> LearnedPolicy | None:
    """kefu's learned policy stands in for TEDPolicy when config.yml lists it (Rasa's `max_history`, and
    RulePolicy's `core_fallback_threshold` as the confidence it needs), or lists no policies at all: Rasa then
    trains its default ones, TEDPolicy among them (a `rasa init` bot's config.yml has them commented out)."""
    ted = config.component("TEDPolicy") if config.policies else {}
    if ted is None:
        return None
    rule = config.component("RulePolicy") or {}
    history = ted.get("max_history") or config.memo_max_history() or 5
    return LearnedPolicy(int(history), float(rule.get("core_fallback_threshold", 0.3)))


def train(project: Project, out_dir: Path, progress: Callable[[str], None] = print,
          fixed_name: str | None = None) -> Path:
    """Train every part and write one archive atomically; returns its path."""
    from bot.faq.index import FAQIndex
    from bot.nlu.embedder import embedder_for
    from bot.nlu.pipeline import NLUPipeline

    started = time.perf_counter()
    domain = domain_for_runtime(project.domain)
    progress(f"training NLU on {len(project.nlu.examples)} examples and {len(project.faq)} FAQ entries")
    nlu = NLUPipeline(project.config)
    embedder = embedder_for(project.config.kefu.embedding)
    with embedder.remembering():  # the FAQ index embeds the phrasings the NLU has just embedded
        nlu.train(_nlu_data_with_faq(project), progress=progress)
        entries = faq_entries(project)
        progress(f"indexing {len(entries)} FAQ entries")
        faq = FAQIndex.build(entries, embedder, progress=progress)
    progress(f"learning {len(project.rules)} rules and {len(project.stories)} stories")
    rules = RulePolicy()
    memo = MemoizationPolicy(project.config.memo_max_history() or 5,
                             augmented=project.config.component("AugmentedMemoizationPolicy") is not None)
    rules.train(project.rules, domain)
    memo.train(project.stories, domain)
    learned = learned_policy(project.config)
    if learned is not None:
        learned.train(project.stories, domain)

    out_dir.mkdir(parents=True, exist_ok=True)
    name = fixed_name or time.strftime("%Y%m%d-%H%M%S", time.localtime()) + ARCHIVE_SUFFIX
    with tempfile.TemporaryDirectory(prefix="kefu-train-") as tmp:
        root = Path(tmp)
        (root / "nlu").mkdir()
        (root / "faq").mkdir()
        nlu.persist(root / "nlu")
        faq.persist(root / "faq")
        metadata = {
            "fingerprint": fingerprint_of(project),
            "kefu_version": __version__,
            "trained_at": time.time(),
            "train_seconds": round(time.perf_counter() - started, 2),
            "config": project.config.model_dump(exclude_unset=True),  # keeps Rasa thresholds
        }
        (root / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=1))
        (root / "domain.json").write_text(json.dumps(domain.as_dict(), ensure_ascii=False))
        (root / "policies.json").write_text(json.dumps({"rules": rules.to_dict(), "memo": memo.to_dict(),
                                                            "learned": learned.to_dict() if learned else None}))
        fd, partial = tempfile.mkstemp(prefix=".partial-", suffix=ARCHIVE_SUFFIX, dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                    for item in sorted(root.rglob("*")):
                        tar.add(item, arcname=str(item.relative_to(root)), recursive=False)
                raw.flush()
                os.fsync(raw.fileno())  # on disk before it gets its name: a crash never leaves a named half
            final = out_dir / name
            os.replace(partial, final)
            fsync_path(out_dir)  # the new name itself survives a crash
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    progress(f"model saved to {final} ({time.perf_counter() - started:.1f} s)")
    return final



def load_newest(models_dir: Path) -> TrainedModel:
    """The newest archive in models_dir that loads. A corrupt or half-written one (a disk that filled up, a copy
    cut short) is skipped with a warning naming it, and the one before it is served."""
    found = archives(models_dir)
    if not found:
        raise ModelError(f"no trained model in {models_dir}: run `kefu train`")
    problems = []
    for path in found:
        try:
            return load_model(path)
        except ModelError as exc:
            problems.append(str(exc))
            log.warning("skipping %s", exc)
    raise ModelError(f"no model archive in {models_dir} loads: {'; '.join(problems)}")


def load_model(path: Path) -> TrainedModel:
    from bot.faq.index import FAQIndex
    from bot.nlu.embedder import embedder_for
    from bot.nlu.pipeline import NLUPipeline

    if not path.is_file():
        raise ModelError(f"no model archive at {path}: run `kefu train`")
    with tempfile.TemporaryDirectory(prefix="kefu-model-") as tmp:
        root = Path(tmp)
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(root, filter="data")
            metadata = json.loads((root / "metadata.json").read_text())
            config = Config.model_validate(metadata["config"])
            domain = domain_for_runtime(Domain.from_dict(json.loads((root / "domain.json").read_text())))
            policies = json.loads((root / "policies.json").read_text())
        except (OSError, tarfile.TarError, EOFError, KeyError, ValueError, zlib.error) as exc:
            raise ModelError(
                f"model archive {path} is corrupt or half-written ({exc.__class__.__name__}: {exc}); "
                "delete it and run `kefu train --force`"
            ) from None
        try:
            nlu = NLUPipeline.load(root / "nlu", config)
            faq = FAQIndex.load(root / "faq", embedder_for(config.kefu.embedding))
        except Exception as exc:
            raise ModelError(f"model archive {path} could not be loaded: {exc}") from None
    return TrainedModel(
        config=config,
        domain=domain,
        nlu=nlu,
        faq=faq,
        rules=RulePolicy.from_dict(policies["rules"]),
        memo=MemoizationPolicy.from_dict(policies["memo"]),
        fingerprint=metadata["fingerprint"],
        path=path,
        trained_at=metadata.get("trained_at", 0.0),
        learned=LearnedPolicy.from_dict(policies["learned"]) if policies.get("learned") else None,
    )


def archive_faq(path: Path) -> tuple[list[FAQEntry], float]:
    """The FAQ entries an archive was trained with, and when, without loading its models (`kefu faq export`)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            metadata = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
            manifest = json.load(tar.extractfile("faq/faq_index.json"))  # type: ignore[arg-type]
        return [FAQEntry(**e) for e in manifest["entries"]], float(metadata.get("trained_at") or 0.0)
    except (OSError, tarfile.TarError, KeyError, TypeError, ValueError, EOFError, zlib.error) as exc:
        raise ModelError(f"model archive {path} is unreadable ({exc}); run `kefu train`") from None


def prune(models_dir: Path, keep: int = 5) -> None:
    """Keep the newest `keep` archives."""
    for old in archives(models_dir)[keep:]:
        old.unlink(missing_ok=True)
