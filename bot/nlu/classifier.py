"""Intent classifier: multinomial logistic regression (fitted by softmax_regression.py) with a temperature fitted
by cross-validation.

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import log_softmax, softmax

from bot.nlu import softmax_regression
from bot.nlu.featurizers import Features

# scikit-learn and scipy.optimize are imported where a model is fitted: a serving process only multiplies by
# the saved weights, and importing them costs it ~1 s of start-up and tens of MB.

C = 10.0  # inverse regularisation strength, chosen on Bitext train/dev and a small bilingual dev set
MAX_FOLDS = 5
LARGE_DATA = 3000  # from this many examples, 3 folds are enough to fit one scalar
WARM_START_FOLDS = 2  # the final model starts from the mean of this many fold models
MIN_CALIBRATION = 20  # fewer usable held-out predictions than this: keep T = 1 rather than guess
TEMPERATURE_RANGE = (0.1, 10.0)

_Fold = tuple[np.ndarray, "IntentClassifier"]  # a fold's model and the class numbers it knows


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

    def fit(
        self,
        x: Features,
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
        splits = _splits(y)
        from threadpoolctl import threadpool_limits

        # The fold models and the final one side by side, one core each: the solver's products release the
        # GIL, and one BLAS thread per fit rather than one per core for each (oversubscribed, the same work
        # took 1.5x as long).
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            folds = [pool.submit(self._fit_fold, x, y, weight, train) for train, _ in splits]
            # Queued last, so the folds it waits for are running or done when it starts.
            final = pool.submit(self._fit_final, x, y, weight, folds[:WARM_START_FOLDS])
            fitted = [fold.result() for fold in folds]
            coef, intercept = final.result()
        self.held_out_logits = _held_out_logits(x, len(self.classes), splits, fitted) if splits else None
        self.temperature, self.cv_accuracy = self._fit_temperature(y, weight, mask)
        self.coef = _column_major(coef)
        self.intercept = intercept.astype(np.float32)

    def _fit_weights(
        self, x: Features, y: np.ndarray, weight: np.ndarray, start: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n_classes, n_features) weights and the intercepts, for classes 0..max(y)."""
        n_classes = int(y.max()) + 1
        coef, intercept = softmax_regression.fit(x.dense, x.sparse, y, n_classes, weight, self.regularisation, start)
        return coef.T, intercept

    def _fit_fold(self, x: Features, y: np.ndarray, weight: np.ndarray, train: np.ndarray) -> _Fold | None:
        """A model of the `train` rows, with the class numbers it knows (None: it would know fewer than two)."""
        present, local = np.unique(y[train], return_inverse=True)
        if len(present) < 2:
            return None
        weights = self._fit_weights(x.rows(train), local, weight[train])
        return present, IntentClassifier([self.classes[i] for i in present], *weights)

    def _fit_final(
        self, x: Features, y: np.ndarray, weight: np.ndarray, folds: list[Future[_Fold | None]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model of all the data, started from the mean of the first folds' models: it then needs a third
        of the Newton steps of a start from zero."""
        fitted = [fold for fold in (future.result() for future in folds) if fold is not None]
        n_features = x.dense.shape[1] + x.sparse.shape[1]
        return self._fit_weights(x, y, weight, _mean_weights(fitted, len(self.classes), n_features))

    def _fit_temperature(self, y: np.ndarray, weight: np.ndarray, mask: np.ndarray) -> tuple[float, float | None]:
        """T minimising the held-out negative log-likelihood, and the held-out accuracy."""
        oof = self.held_out_logits
        if oof is None:
            return 1.0, None
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

    def logits(self, x: Features) -> np.ndarray:
        if self.coef is None or self.intercept is None:
            raise RuntimeError("classifier used before fit/load")
        dense_w, sparse_w = self._split(x.dense.shape[1])
        return x.dense @ dense_w + np.asarray(x.sparse @ sparse_w) + self.intercept

    def _split(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """The weights of the dense and the sparse block, transposed: contiguous views (see `__post_init__`)."""
        assert self.coef is not None
        transposed = self.coef.T
        return transposed[:d], transposed[d:]

    def predict_proba(self, x: Features) -> np.ndarray:
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


def _splits(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds, (train, held out) rows: none when some fold would hold nothing to learn from.

    Classes with fewer examples than folds are fine: they are absent from some training folds, and held-out
    examples whose class the fold model never saw are left out of the calibration."""
    counts = np.bincount(y)
    n_folds = min(MAX_FOLDS if len(y) < LARGE_DATA else 3, int(counts.max()))
    if n_folds < 2:
        return []
    if counts.min() < n_folds:
        return _loose_splits(y, n_folds)
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def _held_out_logits(
    x: Features, n_classes: int, splits: list[tuple[np.ndarray, np.ndarray]], folds: list[_Fold | None]
) -> np.ndarray:
    """Each example's logits from the fold model that did not see it; -inf for classes that model never saw."""
    out = np.full((len(x), n_classes), -np.inf)
    for (_, held), fold in zip(splits, folds, strict=True):
        if fold is not None:
            present, model = fold
            out[np.ix_(held, present)] = model.logits(x.rows(held))
    return out


def _mean_weights(folds: list[_Fold], n_classes: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The fold models' mean weights (n_features, n_classes) and intercepts; a class counts the folds that knew it
    (none: zeros, the solver's own start)."""
    weights = np.zeros((n_features, n_classes), dtype=np.float32)
    intercepts = np.zeros(n_classes, dtype=np.float32)
    seen = np.zeros(n_classes)
    for present, model in folds:
        assert model.coef is not None and model.intercept is not None
        weights[:, present] += model.coef.T
        intercepts[present] += model.intercept
        seen[present] += 1
    seen = np.maximum(seen, 1).astype(np.float32)
    return weights / seen, intercepts / seen


def _import_fitting_libraries() -> None:
    """Imported here, by the thread that fits, before the fold threads start: first imports of one package from
    several threads at once can meet it half-initialised."""
    import scipy.optimize  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import threadpoolctl  # noqa: F401


def _loose_splits(y: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Round-robin folds per class, for data where some intent has fewer examples than folds."""
    fold_of = np.empty(len(y), dtype=int)
    rng = np.random.default_rng(0)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = (np.arange(len(members)) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]
