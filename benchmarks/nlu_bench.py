"""NLU figures on the Bitext customer-service data set and the project's own bot.

    .venv/bin/python benchmarks/nlu_bench.py                # Bitext train → test, as `kefu evaluate` does
    .venv/bin/python benchmarks/nlu_bench.py --split dev    # train → dev (what defaults were chosen on)

Prints the evaluation table, contact_human_agent recall, single-message and batched parse latency, and the
training time of the starter bot (data/nlu.yml). Writes the evaluation report and plots to --out.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from bot.config import Config, load_config
from bot.evaluate import evaluate, main_table
from bot.formats.nlu_data import Example, NLUData, parse_nlu
from bot.formats.yaml_io import load_yaml
from bot.nlu.pipeline import NLUPipeline

ROOT = Path(__file__).resolve().parent.parent
BITEXT = Path("/work/shared/data/bitext-customer-service")


def latency(pipeline: NLUPipeline, texts: list[str]) -> tuple[float, float, float]:
    """p50 / p99 of one-at-a-time parses, and ms per message of parse_batch(50); texts are made unique so the
    embedding cache never answers."""
    timings = []
    for i, text in enumerate(texts):
        started = time.perf_counter()
        pipeline.parse(f"{text} #{i}")
        timings.append((time.perf_counter() - started) * 1000)
    batch = [f"{t} ##{i}" for i, t in enumerate(texts[:50])]
    started = time.perf_counter()
    pipeline.parse_batch(batch)
    per_item = (time.perf_counter() - started) * 1000 / len(batch)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99)), per_item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BITEXT)
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/kefu-nlu-bench"))
    args = parser.parse_args()

    config = Config()
    report = evaluate(
        args.data / "train.csv",
        args.data / f"{args.split}.csv",
        config,
        args.out,
        text_column="utterance",
        label_column="intent",
        progress=print,
    )
    print()
    print(main_table(report))
    human = report["per_label"].get("contact_human_agent")
    if human:
        print(f"contact_human_agent recall {human['recall']:.1%} (support {human['support']})")
    print(f"report and plots in {args.out}")

    with (args.data / "train.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pipeline = NLUPipeline(config)
    pipeline.train(NLUData(examples=[Example(r["utterance"], r["intent"]) for r in rows]))
    with (args.data / "dev.csv").open(encoding="utf-8") as handle:
        texts = [r["utterance"] for r in csv.DictReader(handle)][:300]
    p50, p99, per_item = latency(pipeline, texts)
    print(f"Bitext model: parse p50 {p50:.2f} ms, p99 {p99:.2f} ms; parse_batch(50) {per_item:.2f} ms per message")

    starter = ROOT / "data" / "nlu.yml"
    if starter.is_file():
        data = parse_nlu(load_yaml(starter)["nlu"], str(starter))
        bot_config = load_config(ROOT / "config.yml")
        started = time.perf_counter()
        small = NLUPipeline(bot_config)
        small.train(data)
        seconds = time.perf_counter() - started
        p50, p99, per_item = latency(small, [e.text for e in data.examples][:300])
        print(
            f"starter bot ({len(data.examples)} examples): trained in {seconds:.1f} s; parse p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms; parse_batch(50) {per_item:.2f} ms per message"
        )


if __name__ == "__main__":
    main()
