"""A sentence-transformers model served by onnxruntime: the same vectors as torch, without torch in the process.

torch is ~330 MB of every serving process and its single-sentence forward pass is slower than onnxruntime's on
a CPU (all-MiniLM-L6-v2, one core: ~4.3 ms against ~6 ms in torch's bf16 and ~11 ms in its fp32). So the
transformer is exported to ONNX once per model directory and cached (`KEFU_CACHE_DIR`, default
~/.cache/kefu); the export runs in a child process (`python -m bot.nlu.onnx_encoder MODEL_DIR OUT`), the only
place torch is imported, and keeps the file only when onnxruntime's vectors match torch's (cosine ≥ 0.9999 on
probe sentences). `kefu train` makes the export; a server that finds none makes it at start-up (a few seconds,
once). Pooling and normalisation run in numpy here.

By default (`kefu.embedding.quantize: true`) the export is then quantised: int8 weights, one scale per output
channel, activations quantised on the fly (onnxruntime's dynamic quantisation). all-MiniLM-L6-v2 gets ~2× faster
per sentence (on one core ~2.5–3 ms against ~5–6), its file 90 → 23 MB, and its vectors stay within cosine ~0.99
of fp32's; the demo shop's answers and the Bitext figures did not change (docs/design.md). The quantised file is
kept only when its vectors stay that close to fp32's on probe sentences (`MIN_INT8_COSINE`); otherwise the
encoder serves fp32 and says so. Training and serving use the same file, so the index and the queries agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

PROBES = ["Where is my order? I want a refund for the damaged shoes.", "hi", "退货要几天 refund",
          "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3]
MIN_COSINE = 0.9999
# int8 against fp32 on the probes and INT8_PROBES: all-MiniLM-L6-v2 gives mean 0.992, min 0.975 on shoppers'
# questions; a model that quantises worse is served in fp32.
MIN_INT8_COSINE = (0.98, 0.95)  # (mean, min)
INT8_PROBES = ["how long does shipping take", "can I pay with a credit card, and is there a fee?",
               "the vase arrived broken, I want my money back", "do you ship to Hong Kong", "thanks, bye!",
               "where is my order KF20240001", "I'd like to talk to a real person please", "运费多少钱"]
PRECISIONS = ("int8", "fp32")
EXPORT_TIMEOUT_S = 300


class ExportError(RuntimeError):
    """The model could not be exported, or its export does not give torch's vectors."""


def cache_dir() -> Path:
    return Path(os.environ.get("KEFU_CACHE_DIR") or Path.home() / ".cache" / "kefu")


def export_path(model_dir: Path, precision: str = "fp32") -> Path:
    """Where `model_dir`'s export in `precision` is cached: keyed by the directory and its files' sizes and
    times, so a changed model is exported again."""
    model_dir = model_dir.resolve()
    files = sorted(p for p in model_dir.iterdir() if p.is_file())
    key = hashlib.sha256(str(model_dir).encode())
    for path in files:
        stat = path.stat()
        key.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    name = "model.onnx" if precision == "fp32" else f"model.{precision}.onnx"
    return cache_dir() / "onnx" / f"{model_dir.name}-{key.hexdigest()[:16]}" / name


def load_tokenizer(model_dir: Path) -> Any:
    """The model's fast tokenizer, truncating at its max_seq_length and padding batches."""
    from tokenizers import Tokenizer

    max_length = 256
    try:
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        max_length = int(st_config.get("max_seq_length") or max_length)
    except (OSError, ValueError):
        pass
    # Configured once here and never again: changing settings per call is what makes HF tokenizers fail under
    # concurrent use ("Already borrowed").
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
    return tokenizer


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Mean (over real tokens) or CLS pooling, L2-normalised float32 rows."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32, copy=False)


class OnnxEncoder:
    """tokenizers → onnxruntime (one intra-op thread) → pooling → L2 norm. Thread-safe: onnxruntime's `run`
    may be called from several threads, and runs without the GIL."""

    def __init__(self, model_dir: Path, pooling: str, precision: str = "fp32") -> None:
        import onnxruntime

        onnx_file = export_path(model_dir, precision)
        if not onnx_file.is_file():
            export(model_dir, pooling, onnx_file, precision)
        options = onnxruntime.SessionOptions()
        # One thread per call, as for torch: under load the cores are taken by other requests, and a thread
        # team waiting for a busy core stalls for tens of milliseconds.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cached file (onnxruntime raises its own error types): export again
            export(model_dir, pooling, onnx_file, precision)
            session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._session = session
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = load_tokenizer(model_dir)
        self.pooling = pooling
        self.precision = precision
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """In int8, one text per run: the quantised model scales its activations by their range over the whole
        run, so a text encoded beside others (a batch of training phrasings, the messages that queued up under
        load) got another vector than alone (cosine 0.993 for all-MiniLM-L6-v2, as far as int8 is from fp32),
        and a shopper's answer depended on what other shoppers were asking at the same moment."""
        if self.precision == "int8" and len(texts) > 1:
            return np.concatenate([self._run([text]) for text in texts])
        return self._run(texts)

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        return pool(hidden, mask, self.pooling)


def export(model_dir: Path, pooling: str, out: Path, precision: str = "fp32") -> None:
    """Export in a child process (torch stays out of this one); raises ExportError with its reason."""
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    command = [sys.executable, "-m", "bot.nlu.onnx_encoder", str(model_dir), pooling, str(out), precision]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"exporting {model_dir} to ONNX failed: {exc}") from exc
    if done.returncode != 0 or not out.is_file():
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise ExportError(f"exporting {model_dir} to ONNX failed: {reason}")


def _export_here(model_dir: Path, pooling: str, out: Path, precision: str) -> None:
    """The fp32 export, then for int8 its quantisation (exporting fp32 again when the cached file is damaged)."""
    fp32 = out.with_name("model.onnx")
    if precision == "fp32" or not _loads(fp32):
        _export_fp32(model_dir, pooling, fp32)
    if precision == "int8":
        _quantize(model_dir, pooling, fp32, out)


def _loads(path: Path) -> bool:
    import onnxruntime

    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # missing or damaged (onnxruntime raises its own error types)
        return False
    return True


def _quantize(model_dir: Path, pooling: str, fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation, weights per output channel; kept only if its vectors stay close to fp32's."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        quantize_dynamic(str(fp32), str(partial), per_channel=True, weight_type=QuantType.QInt8)
        tokenizer = load_tokenizer(model_dir)
        encodings = tokenizer.encode_batch(PROBES + INT8_PROBES)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64), "attention_mask": mask}
        vectors = [pool(onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                        .run(None, feeds)[0], mask, pooling) for path in (fp32, partial)]
        cosines = np.sum(vectors[0] * vectors[1], axis=1)
        mean, lowest = MIN_INT8_COSINE
        if cosines.mean() < mean or cosines.min() < lowest:
            raise ExportError(f"int8 vectors differ from fp32's (cosine mean {cosines.mean():.4f}, "
                              f"min {cosines.min():.4f}; needed {mean} and {lowest})")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _export_fp32(model_dir: Path, pooling: str, out: Path) -> None:
    """torch.onnx.export of the transformer, checked against torch's own vectors, written atomically."""
    import warnings

    import onnxruntime
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    tokenizer = load_tokenizer(model_dir)
    encodings = tokenizer.encode_batch(PROBES)
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        dynamic = {0: "batch", 1: "tokens"}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHidden().eval(), (ids, mask), str(partial), dynamo=False, opset_version=17,
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic,
                                            "last_hidden_state": dynamic})
            expected = pool(model(input_ids=ids, attention_mask=mask).last_hidden_state.float().numpy(),
                            mask.numpy(), pooling)
        session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        got = pool(session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0], mask.numpy(),
                   pooling)
        cosine = float(np.min(np.sum(expected * got, axis=1)))
        if cosine < MIN_COSINE:
            raise ExportError(f"onnxruntime's vectors differ from torch's (cosine {cosine:.5f} < {MIN_COSINE})")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[4] not in PRECISIONS:
        sys.exit("usage: python -m bot.nlu.onnx_encoder MODEL_DIR mean|cls OUT.onnx int8|fp32")
    try:
        _export_here(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    except Exception as exc:  # the parent reports the last line
        sys.exit(f"{type(exc).__name__}: {exc}")
