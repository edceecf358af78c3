"""Top-1 of the FAQ's own phrasings, each asked with itself held out — the cross-validation `kefu train` fits the
FAQ score calibration on — per language, so new training phrasings can be judged without the blind test set.

    .venv/bin/python benchmarks/faq_crossval.py                              # data/faq.yml
    .venv/bin/python benchmarks/faq_crossval.py --baseline /tmp/faq_main.yml  # before → after a change

A phrasing is scored as in `FAQIndex.build`: left out of the dense and BM25 index, with the entry selector's
probability from a fold model that did not see it; top-1 is the entry with the highest fused logit. Unlike
training, every phrasing is scored (training samples 2,000 a language). With `--baseline` (an older faq.yml) it
builds that index first and also asks it the phrasings the current file adds — what the bot before the change
does with them: top-1 and the share it would answer, right, at `kefu.thresholds.faq` — then reports the current
file's held-out top-1 on the phrasings both files have and on the new ones. Each index build embeds every
phrasing and cross-validates the selector: a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bot.config import load_config
from bot.faq import calibration
from bot.faq.index import QUESTION, FAQIndex
from bot.formats.faq_data import FAQEntry, parse_faq
from bot.formats.yaml_io import load_yaml
from bot.nlu.embedder import Embedder, embedder_for

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("zh", "en")  # the order FAQIndex.build fits the calibrations in


def load_entries(path: Path) -> list[FAQEntry]:
    return parse_faq((load_yaml(path) or {}).get("faq"), str(path))


def held_out_top1(entries: list[FAQEntry], embedder: Embedder) -> tuple[FAQIndex, dict[str, list[tuple[str, bool]]]]:
    """Build the index and return, per language, (phrasing, its own entry ranked first) for every phrasing."""
    captured: list[tuple[np.ndarray, np.ndarray]] = []
    fit_distribution = calibration.fit_distribution
    max_queries = calibration.MAX_QUERIES

    def capture(fitted: calibration.Calibration, logits: np.ndarray, own: np.ndarray, background: np.ndarray) -> None:
        captured.append((logits.argmax(axis=1), own))
        fit_distribution(fitted, logits, own, background)

    calibration.fit_distribution, calibration.MAX_QUERIES = capture, 10**9  # score all, see the logits
    try:
        index = FAQIndex.build(entries, embedder)
    finally:
        calibration.fit_distribution, calibration.MAX_QUERIES = fit_distribution, max_queries
    rows = index._rows
    results: dict[str, list[tuple[str, bool]]] = {}
    for lang, (best, own) in zip(LANGUAGES, captured, strict=True):
        start, end = rows.blocks[lang]
        queries = np.flatnonzero(rows.kind[start:end] == QUESTION) + start
        results[lang] = [(rows.text[q], bool(b == o)) for q, b, o in zip(queries, best, own, strict=True)]
    return index, results


def share(flags: list[bool]) -> str:
    return f"{np.mean(flags):.1%} of {len(flags)}" if flags else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faq", type=Path, default=ROOT / "data" / "faq.yml")
    parser.add_argument("--baseline", type=Path, help="an older faq.yml to compare with")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    args = parser.parse_args()
    config = load_config(args.config)
    embedder = embedder_for(config.kefu.embedding)
    current = load_entries(args.faq)
    before: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
    if args.baseline:
        baseline = load_entries(args.baseline)
        started = time.perf_counter()
        old_index, old = held_out_top1(baseline, embedder)
        print(f"baseline {args.baseline} ({time.perf_counter() - started:.0f} s to build)")
        for lang in LANGUAGES:
            print(f"  {lang}: held-out top-1 {share([ok for _, ok in old[lang]])}")
            before[lang] = {text for text, _ in old[lang]}
        threshold = config.effective_thresholds().faq
        for lang in LANGUAGES:
            new = [(q, e.id) for e in current for q in e.questions.get(lang, []) if q not in before[lang]]
            if not new:
                continue
            hits = old_index.search_batch([q for q, _ in new], [lang] * len(new), k=1)
            top1 = [bool(h) and h[0].id == gold for h, (_, gold) in zip(hits, new, strict=True)]
            answered = [bool(h) and h[0].score >= threshold for h in hits]
            right = [a and t for a, t in zip(answered, top1, strict=True)]
            print(f"  {lang}: the {len(new)} new phrasings asked of the baseline index: top-1 {share(top1)}, "
                  f"answered at faq ≥ {threshold}: {np.mean(answered):.1%}, answered right {np.mean(right):.1%}")
    started = time.perf_counter()
    _, now = held_out_top1(current, embedder)
    print(f"current {args.faq} ({time.perf_counter() - started:.0f} s to build)")
    for lang in LANGUAGES:
        line = f"  {lang}: held-out top-1 {share([ok for _, ok in now[lang]])}"
        if args.baseline:
            kept = [ok for text, ok in now[lang] if text in before[lang]]
            added = [ok for text, ok in now[lang] if text not in before[lang]]
            line += f" (phrasings of the baseline {share(kept)}, new ones {share(added)})"
        print(line)


if __name__ == "__main__":
    main()
