"""`kefu evaluate`: what the NLU and the configured thresholds cost on any labelled data set.

Trains an NLUPipeline on TRAIN only, parses every TEST row one at a time (timed), and applies the decision the
running bot makes (`EscalationPolicy.decide`, the engine's own): answer, or fall back / escalate, with the
thresholds of config.yml (never tuned here). Rows labelled with the out-of-scope label are out of scope:
rejecting them is right. If TRAIN has rows with that label too (Rasa bots often have an `out_of_scope` intent),
they are trained as an ordinary intent and predicting it counts as a rejection, as the bot would answer it with
its out-of-scope response rather than an in-scope one.

Writes out_dir/report.json, out_dir/confusion_matrix.png and out_dir/threshold_curve.png.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Config, Thresholds
from bot.dialogue.escalation import EXPLICIT_REQUEST, NLU_FALLBACK, Decision, EscalationPolicy
from bot.formats.nlu_data import Example, NLUData, parse_nlu
from bot.formats.yaml_io import DataError, load_yaml
from bot.nlu.pipeline import NLUPipeline

REJECTED = "(rejected)"
CURVE_THRESHOLDS = [round(0.05 * i, 2) for i in range(20)]  # 0.0 … 0.95


# ------------------------------------------------------------------------------------------------ reading
def load_labelled(path: Path, text_column: str = "text", label_column: str = "label") -> NLUData:
    """A CSV with a header, or Rasa NLU YAML (labels are base intents: "faq/x" counts as "faq")."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    if path.suffix.lower() in (".yml", ".yaml"):
        raw = load_yaml(path)
        if not isinstance(raw, dict) or "nlu" not in raw:
            raise DataError("expected Rasa NLU data with an 'nlu:' key", path)
        data = parse_nlu(raw["nlu"], str(path))
        for example in data.examples:
            example.intent = example.base_intent
        return data
    return NLUData(examples=_read_csv(path, text_column, label_column))


def _read_csv(path: Path, text_column: str, label_column: str) -> list[Example]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in (text_column, label_column) if c not in columns]
            if missing:
                found = ", ".join(repr(c) for c in columns) or "none (empty file?)"
                raise DataError(
                    f"column {' and '.join(repr(c) for c in missing)} not found; the columns are {found}. "
                    "Name the right ones with --text-column and --label-column",
                    path,
                )
            examples = []
            for row in reader:
                text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
                if not text and not label:
                    continue
                if not text or not label:
                    raise DataError(f"row with an empty {'text' if not text else 'label'}", path, reader.line_num)
                examples.append(Example(text, label, source=f"{path}:{reader.line_num}"))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except csv.Error as exc:
        raise DataError(f"invalid CSV: {exc}", path) from None
    if not examples:
        raise DataError("no rows", path)
    return examples


# ------------------------------------------------------------------------------------------------ scoring
def decided_label(decision: Decision, policy: EscalationPolicy, oos_label: str) -> str:
    """What the bot does with a message, as a label: the intent it acts on, or REJECTED when it falls back or
    hands over without one (an explicit request for a person counts as the human intent when the data has one)."""
    if decision.intent in (None, NLU_FALLBACK, oos_label):
        return REJECTED
    if decision.explicit_request and decision.intent != policy.human_intent:
        return REJECTED
    return decision.intent


def rejection_reason(decision: Decision, oos_label: str) -> str | None:
    if decision.explicit_request:
        return EXPLICIT_REQUEST
    return decision.nlu_reason or ("predicted_oos_label" if decision.intent == oos_label else None)


def _decisions(texts: list[str], parses: list[dict[str, Any]], policy: EscalationPolicy, oos_label: str) -> list[str]:
    """What the bot does with each message: the intent it acts on, or REJECTED."""
    return [decided_label(policy.decide(t, p, []), policy, oos_label) for t, p in zip(texts, parses, strict=True)]


def _scores(gold: list[str], decided: list[str], oos_label: str) -> dict[str, Any]:
    in_scope = [i for i, g in enumerate(gold) if g != oos_label]
    oos = [i for i, g in enumerate(gold) if g == oos_label]
    rejected = [i for i, d in enumerate(decided) if d == REJECTED]
    labels = sorted({gold[i] for i in in_scope})
    per_label: dict[str, dict[str, Any]] = {}
    for label in labels:
        tp = sum(1 for i in in_scope if gold[i] == label and decided[i] == label)
        predicted = sum(1 for d in decided if d == label)
        support = sum(1 for i in in_scope if gold[i] == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
    correct = sum(1 for i in in_scope if decided[i] == gold[i])
    oos_rejected = sum(1 for i in oos if decided[i] == REJECTED)
    return {
        "in_scope_accuracy": round(correct / len(in_scope), 4) if in_scope else None,
        "oos_recall": round(oos_rejected / len(oos), 4) if oos else None,
        "oos_precision": round(oos_rejected / len(rejected), 4) if rejected else None,
        "macro_f1": round(float(np.mean([p["f1"] for p in per_label.values()])), 4) if per_label else None,
        "n_rejected": len(rejected),
        "per_label": per_label,
    }


def _calibration_error(confidence: list[float], right: list[bool], bins: int = 10) -> float | None:
    """Expected calibration error of the top intent on in-scope rows: the mean |accuracy - confidence| over
    equal-width confidence bins, weighted by their rows (0 = a confidence of 0.8 is right 80% of the time)."""
    if not confidence:
        return None
    conf, ok = np.asarray(confidence), np.asarray(right, dtype=float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    error = sum(abs(ok[which == b].mean() - conf[which == b].mean()) * (which == b).sum() for b in np.unique(which))
    return round(float(error / len(conf)), 4)


# ------------------------------------------------------------------------------------------------ main
def evaluate(
    train_path: Path,
    test_path: Path,
    config: Config,
    out_dir: Path,
    oos_label: str = "oos",
    text_column: str = "text",
    label_column: str = "label",
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train on TRAIN, decide on every TEST row, write the report and plots; returns the report."""
    say = progress or (lambda _msg: None)
    train = load_labelled(Path(train_path), text_column, label_column)
    test = load_labelled(Path(test_path), text_column, label_column)
    thresholds = config.effective_thresholds()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    say(f"training on {len(train.examples)} rows of {train_path}")
    pipeline = NLUPipeline(config)
    started = time.perf_counter()
    pipeline.train(train, progress=say)
    train_seconds = time.perf_counter() - started

    say(f"parsing {len(test.examples)} rows of {test_path}, one at a time")
    parses, timings = [], []
    for example in test.examples:
        t0 = time.perf_counter()
        parses.append(pipeline.parse(example.text))
        timings.append((time.perf_counter() - t0) * 1000)
    gold = [e.intent for e in test.examples]
    texts = [e.text for e in test.examples]
    labels_seen = {e.intent for e in train.examples}
    policy = EscalationPolicy(config.kefu, thresholds, labels_seen)
    decided = _decisions(texts, parses, policy, oos_label)
    scores = _scores(gold, decided, oos_label)

    curve = []
    for threshold in CURVE_THRESHOLDS:
        swept = thresholds.model_copy(update={"intent": threshold})
        point = _scores(gold, _decisions(texts, parses, EscalationPolicy(config.kefu, swept, labels_seen), oos_label),
                        oos_label)
        curve.append(
            {
                "threshold": threshold,
                "in_scope_accuracy": point["in_scope_accuracy"],
                "oos_recall": point["oos_recall"],
            }
        )
    reasons: dict[str, int] = {}
    for text, parse, label in zip(texts, parses, decided, strict=True):
        reason = rejection_reason(policy.decide(text, parse, []), oos_label) if label == REJECTED else None
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    in_scope_rows = [i for i, g in enumerate(gold) if g != oos_label]
    top1 = sum(1 for i in in_scope_rows if parses[i]["intent"]["name"] == gold[i])
    confidence = [float(parses[i]["intent"]["confidence"]) for i in in_scope_rows]
    right = [parses[i]["intent"]["name"] == gold[i] for i in in_scope_rows]

    report: dict[str, Any] = {
        "train_file": str(train_path),
        "test_file": str(test_path),
        "oos_label": oos_label,
        "n_train": len(train.examples),
        "n_test": len(test.examples),
        "n_oos": sum(1 for g in gold if g == oos_label),
        "n_train_oos": sum(1 for e in train.examples if e.intent == oos_label),
        **{k: scores[k] for k in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "n_rejected")},
        "top1_accuracy_without_rejection": round(top1 / len(in_scope_rows), 4) if in_scope_rows else None,
        "calibration_error": _calibration_error(confidence, right),
        "rejection_reasons": reasons,
        "thresholds": {"intent": thresholds.intent, "ambiguity": thresholds.ambiguity},
        "train_seconds": round(train_seconds, 2),
        "parse_ms_p50": round(float(np.percentile(timings, 50)), 2),
        "parse_ms_p99": round(float(np.percentile(timings, 99)), 2),
        "per_label": scores["per_label"],
        "curve": curve,
        "training": pipeline.training_report,
    }
    known = {g for g in gold if g != oos_label} | {e.intent for e in train.examples if e.intent != oos_label}
    labels = sorted(known)
    if report["n_oos"]:
        labels.append(oos_label)
    _plot_confusion(gold, decided, labels, oos_label, out_dir / "confusion_matrix.png", thresholds)
    _plot_curve(curve, thresholds, out_dir / "threshold_curve.png")
    _write_json(out_dir / "report.json", report)
    report["files"] = {
        "report": str(out_dir / "report.json"),
        "confusion_matrix": str(out_dir / "confusion_matrix.png"),
        "threshold_curve": str(out_dir / "threshold_curve.png"),
    }
    return report


def main_table(report: dict[str, Any]) -> str:
    """The short table `kefu evaluate` prints."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    th = report["thresholds"]
    rows = [
        ("train / test rows", f"{report['n_train']} / {report['n_test']} ({report['n_oos']} out of scope)"),
        ("thresholds", f"intent {th['intent']:.2f}, ambiguity {th['ambiguity']:.2f}"),
        ("in-scope accuracy", pct(report["in_scope_accuracy"])),
        ("  top-1 before rejection", pct(report.get("top1_accuracy_without_rejection"))),
        ("out-of-scope recall", pct(report["oos_recall"])),
        ("out-of-scope precision", pct(report["oos_precision"])),
        ("macro F1 (in scope)", "n/a" if report["macro_f1"] is None else f"{report['macro_f1']:.3f}"),
        ("calibration error (ECE)", "n/a" if report.get("calibration_error") is None
         else f"{report['calibration_error']:.3f}"),
        ("rejected", str(report.get("n_rejected", "n/a"))),
        ("training", f"{report['train_seconds']:.1f} s"),
        ("parse p50 / p99", f"{report['parse_ms_p50']:.1f} / {report['parse_ms_p99']:.1f} ms"),
    ]
    worst = sorted(report["per_label"].items(), key=lambda kv: (kv[1]["f1"], kv[0]))[:5]
    worst = [(name, m) for name, m in worst if m["f1"] < 1.0]
    if worst:
        rows.append(("lowest F1", ", ".join(f"{name} {m['f1']:.2f}" for name, m in worst)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


# ------------------------------------------------------------------------------------------------ output
def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _save(figure: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def _plot_confusion(
    gold: list[str], decided: list[str], labels: list[str], oos_label: str, path: Path, th: Thresholds
) -> None:
    """Rows: true labels; columns: the bot's decision (a label or rejected). Colour = share of the row."""
    from matplotlib.figure import Figure

    answered = [label for label in labels if label != oos_label]  # the out-of-scope label is never an answer
    extra = sorted({d for d in decided if d not in answered and d != REJECTED})  # labels absent from TEST
    columns = [*answered, *extra, REJECTED]
    row_of = {name: i for i, name in enumerate(labels)}
    col_of = {name: i for i, name in enumerate(columns)}
    counts = np.zeros((len(labels), len(columns)), dtype=int)
    for g, d in zip(gold, decided, strict=True):
        if g in row_of:
            counts[row_of[g], col_of[d]] += 1
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    shade = np.where(counts > 0, 0.15 + 0.85 * share, 0.0)  # a single stray message still shows
    size = max(6.0, 0.36 * len(columns) + 3)
    figure = Figure(figsize=(size, max(5.0, 0.34 * len(labels) + 3)))
    ax = figure.add_subplot()
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    font = 8.5 if len(columns) <= 20 else 7.5
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=font)
    ax.set_yticks(range(len(labels)), labels, fontsize=font)
    for r in range(len(labels)):
        for c in range(len(columns)):
            if counts[r, c]:
                ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=font - 0.5,
                        color="white" if share[r, c] > 0.5 else "black")
    ax.get_xticklabels()[-1].set_fontweight("bold")
    ax.set_xlabel("bot's decision (last column: fallback / escalation)")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix (intent threshold {th.intent:.2f}, ambiguity {th.ambiguity:.2f})")
    _save(figure, path)


def _plot_curve(curve: list[dict[str, Any]], th: Thresholds, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    ax = figure.add_subplot()
    xs = [p["threshold"] for p in curve]
    ax.plot(xs, [p["in_scope_accuracy"] if p["in_scope_accuracy"] is not None else np.nan for p in curve],
            marker="o", label="in-scope accuracy (answered and right)")
    if any(p["oos_recall"] is not None for p in curve):
        ax.plot(xs, [p["oos_recall"] if p["oos_recall"] is not None else np.nan for p in curve],
                marker="s", label="out-of-scope recall (rejected)")
    ax.axvline(th.intent, color="grey", linestyle="--", label=f"configured threshold {th.intent:.2f}")
    ax.set_xlabel("intent confidence threshold")
    ax.set_ylabel("share")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, 0.95)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"What the fallback threshold costs (ambiguity margin {th.ambiguity:.2f})")
    _save(figure, path)
