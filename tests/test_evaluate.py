"""`kefu evaluate` on small labelled files: the report a user reads, the plots, and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bot.config import Config
from bot.evaluate import evaluate, load_labelled, main_table
from bot.formats.yaml_io import DataError

TRAIN = [
    ("hello", "greet"), ("hi there", "greet"), ("good morning", "greet"), ("hey", "greet"),
    ("你好", "greet"), ("您好", "greet"), ("早上好", "greet"), ("哈喽", "greet"),
    ("I want to talk to a human", "human_handoff"), ("transfer me to an agent", "human_handoff"),
    ("get me a real person", "human_handoff"), ("I need a live agent", "human_handoff"),
    ("转人工", "human_handoff"), ("我要找人工客服", "human_handoff"), ("有没有真人客服", "human_handoff"),
    ("帮我转接客服人员", "human_handoff"),
    ("where is my package", "shipping"), ("when will my order ship", "shipping"),
    ("how long does delivery take", "shipping"), ("track my parcel", "shipping"),
    ("什么时候发货", "shipping"), ("我的快递到哪了", "shipping"), ("几天能到", "shipping"),
    ("物流信息怎么查", "shipping"),
    ("I want a refund", "refund"), ("how do I return this item", "refund"),
    ("can I get my money back", "refund"), ("the item is broken, I want to return it", "refund"),
    ("我要退款", "refund"), ("怎么退货", "refund"), ("可以退钱吗", "refund"), ("东西坏了要退货", "refund"),
]
TEST = [
    ("hey, is somebody there?", "greet"), ("你好呀", "greet"),
    ("please connect me with a human agent", "human_handoff"), ("我要人工服务", "human_handoff"),
    ("where is my parcel now?", "shipping"), ("快递到哪里了", "shipping"),
    ("how can I return a product", "refund"), ("我想退货", "refund"),
    ("what's the weather tomorrow", "oos"), ("明天天气怎么样", "oos"), ("recommend a stock", "oos"),
    ("推荐一只股票", "oos"),
]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, "notes"])
        writer.writerows([text, label, ""] for text, label in rows)
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def report(report_dir: Path) -> dict:
    train = write_csv(report_dir / "train.csv", TRAIN)
    test = write_csv(report_dir / "test.csv", TEST)
    return evaluate(train, test, Config(), report_dir / "out", progress=None)


def test_report_json_has_the_figures(report: dict, report_dir: Path) -> None:
    saved = json.loads((report_dir / "out" / "report.json").read_text(encoding="utf-8"))
    for key in (
        "n_train", "n_test", "n_oos", "in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1",
        "per_label", "train_seconds", "parse_ms_p50", "parse_ms_p99", "curve", "thresholds",
    ):
        assert key in saved, key
    assert (saved["n_train"], saved["n_test"], saved["n_oos"]) == (len(TRAIN), len(TEST), 4)
    assert saved["thresholds"] == {"intent": 0.45, "ambiguity": 0.08}
    assert set(saved["per_label"]) == {"greet", "human_handoff", "shipping", "refund"}
    assert saved["per_label"]["refund"]["support"] == 2
    assert set(saved["per_label"]["refund"]) == {"precision", "recall", "f1", "support"}
    assert saved["train_seconds"] > 0 and saved["parse_ms_p99"] >= saved["parse_ms_p50"] > 0


def test_the_small_bot_answers_in_scope_and_rejects_out_of_scope(report: dict) -> None:
    assert report["in_scope_accuracy"] == 1.0
    assert report["oos_recall"] == 1.0
    assert report["oos_precision"] == 1.0
    assert report["macro_f1"] == 1.0


def test_threshold_curve_sweeps_the_intent_threshold(report: dict) -> None:
    curve = report["curve"]
    assert [p["threshold"] for p in curve] == [round(0.05 * i, 2) for i in range(20)]
    assert curve[0]["oos_recall"] <= curve[-1]["oos_recall"]  # a higher bar rejects more
    assert curve[0]["in_scope_accuracy"] >= curve[-1]["in_scope_accuracy"]
    assert all(set(p) == {"threshold", "in_scope_accuracy", "oos_recall"} for p in curve)


def test_plots_are_written(report: dict, report_dir: Path) -> None:
    for name in ("confusion_matrix.png", "threshold_curve.png"):
        png = (report_dir / "out" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, name


def test_main_table_shows_the_headline_figures(report: dict) -> None:
    table = main_table(report)
    assert "in-scope accuracy" in table and "100.0%" in table
    assert "out-of-scope recall" in table
    assert "parse p50 / p99" in table
    assert "intent 0.45, ambiguity 0.08" in table


def test_missing_column_names_the_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", TRAIN, header=("utterance", "intent"))
    with pytest.raises(DataError) as info:
        evaluate(path, path, Config(), tmp_path / "out", progress=None)
    message = str(info.value)
    assert "'text'" in message and "'label'" in message
    assert "'utterance', 'intent', 'notes'" in message
    assert "--text-column" in message
    assert not (tmp_path / "out" / "report.json").exists()


def test_other_column_names_and_yaml_training_data(tmp_path: Path) -> None:
    test = write_csv(tmp_path / "test.csv", TEST, header=("utterance", "intent"))
    yaml_lines = ["version: '3.1'", "nlu:"]
    for intent in dict.fromkeys(label for _, label in TRAIN):
        yaml_lines += [f"- intent: {intent}", "  examples: |"]
        yaml_lines += [f"    - {text}" for text, label in TRAIN if label == intent]
    train = tmp_path / "nlu.yml"
    train.write_text("\n".join(yaml_lines) + "\n", encoding="utf-8")
    result = evaluate(
        train, test, Config(), tmp_path / "out", text_column="utterance", label_column="intent", progress=None
    )
    assert result["n_train"] == len(TRAIN) and result["n_oos"] == 4
    assert result["in_scope_accuracy"] >= 0.75


def test_oos_label_in_training_is_a_class_whose_prediction_counts_as_rejection(tmp_path: Path) -> None:
    oos_train = [("what's the capital of France", "out_of_scope"), ("法国的首都是哪里", "out_of_scope"),
                 ("sing me a song", "out_of_scope"), ("唱首歌", "out_of_scope")]
    train = write_csv(tmp_path / "train.csv", TRAIN + oos_train)
    test = write_csv(tmp_path / "test.csv", [(t, "out_of_scope" if lab == "oos" else lab) for t, lab in TEST])
    result = evaluate(train, test, Config(), tmp_path / "out", oos_label="out_of_scope", progress=None)
    assert result["n_train_oos"] == 4
    assert "out_of_scope" not in result["per_label"]
    assert result["oos_recall"] == 1.0


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_labelled(tmp_path / "nope.csv")
    empty_label = tmp_path / "bad.csv"
    empty_label.write_text("text,label\nhello,greet\nhi,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:3: row with an empty label"):
        load_labelled(empty_label)
    not_nlu = tmp_path / "x.yml"
    not_nlu.write_text("rules: []\n", encoding="utf-8")
    with pytest.raises(DataError, match="'nlu:'"):
        load_labelled(not_nlu)
