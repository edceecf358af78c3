"""Intent classifier: multinomial logistic regression with a temperature fitted by cross-validation.

Why a temperature: a regularised logistic regression is badly calibrated (usually under-confident with many
intents), and the fallback threshold in config.yml only means something if "0.45" means "right about 45% of
the time". The temperature T is fitted on out-of-fold logits of the training data only (k-fold, k ≤ 5,
stratified): T minimises the negative log-likelihood of softmax(logits / T) over the held-out examples, then the
final model is fitted on all examples and used with that T. This is Guo et al.'s temperature scaling, with the
validation set replaced by cross-validation so no data is set aside. Only the bot's own examples count in the
fit (not the built-in off-topic ones), and with fewer than MIN_CALIBRATION usable held-out predictions (a bot
with a handful of examples) T stays 1 rather than being guessed from noise.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax, softmax

from bot.nlu.featurizers import Features

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

# scikit-learn and scipy.optimize are imported where a model is fitted: a serving process only multiplies by
# the saved weights, and importing them costs it ~1 s of start-up and tens of MB.

C = 10.0  # inverse regularisation strength, chosen on Bitext train/dev and a small bilingual dev set
MAX_ITER = 300
SOLVER = "newton-cg"  # a few Newton steps: 2-4x faster than lbfgs on these many-feature problems
MAX_FOLDS = 5
LARGE_DATA = 3000  # from this many examples, 3 folds are enough to fit one scalar
MIN_CALIBRATION = 20  # fewer usable held-out predictions than this: keep T = 1 rather than guess
TEMPERATURE_RANGE = (0.1, 10.0)


@dataclass
class IntentClassifier:
    classes: list[str] = field(default_factory=list)
    coef: np.ndarray | None = None  # (n_classes, n_features) float32, column-major (see `__post_init__`)
    intercept: np.ndarray | None = None  # (n_classes,)
    temperature: float = 1.0
    cv_accuracy: float | None = None  # out-of-fold top-1 accuracy, for the training log
    # after fit: each example's logits from the fold model that did not see it (-inf: class unknown to that
    # fold; None: too little data to cross-validate). Not persisted: for calibrating what is built on top.
    held_out_logits: np.ndarray | None = field(default=None, repr=False, compare=False)
    regularisation: float = field(default=C, repr=False, compare=False)  # the C of `fit`, not persisted

    def __post_init__(self) -> None:
        """The weights are kept column-major: a message's logits read them transposed, features × classes, split
        into the dense and the sparse block — contiguous views of one array rather than a second copy of it
        (the FAQ selector's weights are 8 MB)."""
        if self.coef is not None:
            self.coef = _column_major(self.coef)

    def _fit_lr(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray) -> LogisticRegression:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.regularisation, max_iter=MAX_ITER, tol=1e-4, solver=SOLVER)
        model.fit(x, y, sample_weight=weight)
        return model

    @staticmethod
    def _logits_of(model: LogisticRegression, x: sp.csr_matrix, n_classes: int) -> np.ndarray:
        """Logits over all classes; classes missing from this model's training fold get -inf."""
        raw = model.decision_function(x)
        if raw.ndim == 1:  # binary: p(class 1) = sigmoid(z) = softmax([0, z])
            raw = np.stack([np.zeros_like(raw), raw], axis=1)
        out = np.full((x.shape[0], n_classes), -np.inf)
        out[:, model.classes_] = raw
        return out

    def fit(
        self,
        x: sp.csr_matrix,
        labels: list[str],
        sample_weight: np.ndarray | None = None,
        calibrate_on: np.ndarray | None = None,
    ) -> None:
        """`calibrate_on` (bool per example, default all): whose held-out predictions the temperature fits."""
        _import_fitting_libraries()
        self.classes = sorted(set(labels))
        index = {name: i for i, name in enumerate(self.classes)}
        y = np.array([index[name] for name in labels])
        if len(self.classes) < 2:
            raise ValueError("an intent classifier needs at least two intents")
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        mask = np.ones(len(y), dtype=bool) if calibrate_on is None else np.asarray(calibrate_on, dtype=bool)
        # The fold models and the final one are independent: fit them side by side (the solver's sparse
        # products release the GIL, so threads use every core).
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            final = pool.submit(self._fit_lr, x, y, weight)
            self.temperature, self.cv_accuracy = self._fit_temperature(x, y, weight, mask, pool)
            model = final.result()
        coef = model.coef_
        intercept = model.intercept_
        if coef.shape[0] == 1:  # binary: store as two rows so prediction is one code path
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        self.coef = _column_major(coef)
        self.intercept = intercept.astype(np.float32)

    def _fit_temperature(
        self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray, mask: np.ndarray, pool: Executor
    ) -> tuple[float, float | None]:
        counts = np.bincount(y)
        folds = min(MAX_FOLDS if len(y) < LARGE_DATA else 3, int(counts.max()))
        self.held_out_logits = None
        if folds < 2:
            return 1.0, None
        # Classes with fewer examples than folds are fine: they are absent from some training folds, and
        # held-out examples whose class the fold model never saw are left out of the fit below.
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        splits = list(splitter.split(np.zeros(len(y)), y)) if counts.min() >= folds else _loose_splits(y, folds)

        def run(split: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            train, held = split
            if len(np.unique(y[train])) < 2:
                return held, np.full((len(held), len(counts)), -np.inf)
            return held, self._logits_of(self._fit_lr(x[train], y[train], weight[train]), x[held], len(counts))

        oof = np.full((len(y), len(counts)), -np.inf)
        for held, logits in pool.map(run, splits):
            oof[held] = logits
        self.held_out_logits = oof
        # usable: calibration examples whose class the fold model knew, when it also knew another intent
        known = np.isfinite(oof)
        usable = mask & known[np.arange(len(y)), y] & (known.sum(axis=1) >= 2)
        if usable.sum() < MIN_CALIBRATION:
            return 1.0, None
        logits, target, w = oof[usable], y[usable], weight[usable]
        accuracy = float(((logits.argmax(axis=1) == target) * w).sum() / w.sum())

        def nll(log_t: float) -> float:
            scaled = log_softmax(logits / np.exp(log_t), axis=1)
            return float(-(scaled[np.arange(len(target)), target] * w).sum() / w.sum())

        low, high = TEMPERATURE_RANGE
        from scipy.optimize import minimize_scalar

        result = minimize_scalar(nll, bounds=(np.log(low), np.log(high)), method="bounded")
        return float(np.exp(result.x)), accuracy

    def logits(self, x: sp.csr_matrix | Features) -> np.ndarray:
        """Logits for a stacked matrix, or for Features without stacking them (cheaper per message)."""
        if self.coef is None or self.intercept is None:
            raise RuntimeError("classifier used before fit/load")
        if isinstance(x, Features):
            dense_w, sparse_w = self._split(x.dense.shape[1])
            return x.dense @ dense_w + np.asarray(x.sparse @ sparse_w) + self.intercept
        return np.asarray(x @ self.coef.T) + self.intercept

    def _split(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """The weights of the dense and the sparse block, transposed: contiguous views (see `__post_init__`)."""
        assert self.coef is not None
        transposed = self.coef.T
        return transposed[:d], transposed[d:]

    def predict_proba(self, x: sp.csr_matrix | Features) -> np.ndarray:
        """Calibrated probabilities, shape (n, n_classes), columns in `classes` order."""
        return softmax(self.logits(x) / self.temperature, axis=1)

    # persistence
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.coef is not None and self.intercept is not None
        meta = {"classes": self.classes, "temperature": self.temperature, "cv_accuracy": self.cv_accuracy}
        return meta, {"coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> IntentClassifier:
        coef, intercept = arrays["coef"], arrays["intercept"]
        classes = [str(c) for c in meta["classes"]]
        if coef.ndim != 2 or coef.shape[0] != len(classes) or intercept.shape != (len(classes),):
            raise ValueError("classifier weights do not match its classes")
        return cls(classes, coef, intercept, float(meta["temperature"]), meta.get("cv_accuracy"))


def _column_major(coef: np.ndarray) -> np.ndarray:
    """float32 (n_classes, n_features) whose transpose is C-contiguous (no copy when it already is)."""
    return np.ascontiguousarray(coef.T, dtype=np.float32).T


def _import_fitting_libraries() -> None:
    """Imported here, by the thread that fits, before the fold threads start: first imports of one package from
    several threads at once can meet it half-initialised."""
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model
    import sklearn.model_selection  # noqa: F401


def _loose_splits(y: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Round-robin folds per class, for data where some intent has fewer examples than folds."""
    fold_of = np.empty(len(y), dtype=int)
    rng = np.random.default_rng(0)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = (np.arange(len(members)) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]
