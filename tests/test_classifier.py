"""The intent classifier's fitting: kefu's own solver must land where scikit-learn's does, and the calibrated
classifier built on it must know which intent a message is about, and how sure to be."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from bot.nlu import softmax_regression
from bot.nlu.classifier import IntentClassifier
from bot.nlu.featurizers import Features


def _blobs(n: int, n_classes: int, seed: int, noise: float = 1.0) -> tuple[Features, np.ndarray]:
    """Examples whose dense block and sparse n-grams both hint at their class, through noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(n_classes, size=n)
    centres = rng.normal(size=(n_classes, 12))
    dense = (centres[y] + noise * rng.normal(size=(n, 12))).astype(np.float32)
    vocabulary = 60
    telling = y[:, None] * 5 + rng.integers(5, size=(n, 4))
    words = np.where(rng.random((n, 4)) < 0.6, telling, rng.integers(vocabulary, size=(n, 4)))
    values = np.ones(words.size, dtype=np.float32)
    sparse = sp.csr_matrix((values, (np.repeat(np.arange(n), 4), words.ravel())), shape=(n, vocabulary))
    return Features(dense, sparse), y


def test_the_solver_lands_on_scikit_learns_optimum() -> None:
    x, y = _blobs(600, 4, seed=1, noise=2.0)
    weight = np.random.default_rng(2).uniform(0.2, 2.0, size=len(y))
    coef, intercept = softmax_regression.fit(x.dense, x.sparse, y, 4, weight, c=3.0, tol=1e-6)
    reference = LogisticRegression(C=3.0, solver="newton-cg", tol=1e-8, max_iter=1000)
    reference.fit(sp.hstack([sp.csr_matrix(x.dense), x.sparse], format="csr"), y, sample_weight=weight)
    ours = softmax(x.dense @ coef[:12] + x.sparse @ coef[12:] + intercept, axis=1)
    theirs = reference.predict_proba(sp.hstack([sp.csr_matrix(x.dense), x.sparse], format="csr"))
    assert np.abs(ours - theirs).max() < 1e-4


def test_a_warm_start_reaches_the_same_model() -> None:
    x, y = _blobs(500, 3, seed=3, noise=2.0)
    weight = np.ones(len(y))
    cold = softmax_regression.fit(x.dense, x.sparse, y, 3, weight, c=10.0)
    half = softmax_regression.fit(x.dense[:250], x.sparse[:250], y[:250], 3, weight[:250], c=10.0)
    warm = softmax_regression.fit(x.dense, x.sparse, y, 3, weight, c=10.0, start=half)

    def proba(model: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return softmax(x.dense @ model[0][:12] + x.sparse @ model[0][12:] + model[1], axis=1)
    assert np.abs(proba(cold) - proba(warm)).max() < 5e-3


def test_the_classifier_learns_intents_and_how_sure_to_be() -> None:
    everything, labels = _blobs(1300, 5, seed=4, noise=1.5)
    train, y = everything.rows(np.arange(900)), labels[:900]
    test, y_test = everything.rows(np.arange(900, 1300)), labels[900:]
    names = ["ask_price", "ask_shipping", "greet", "goodbye", "complain"]
    classifier = IntentClassifier()
    classifier.fit(train, [names[i] for i in y])
    assert classifier.classes == sorted(names)
    order = np.array([classifier.classes.index(name) for name in names])
    proba = classifier.predict_proba(test)[:, order]
    accuracy = (proba.argmax(axis=1) == y_test).mean()
    assert accuracy > 0.85
    # calibrated: the mean confidence is close to the accuracy on examples it never saw
    assert abs(proba.max(axis=1).mean() - accuracy) < 0.05
    assert classifier.cv_accuracy is not None and abs(classifier.cv_accuracy - accuracy) < 0.05
    held_out = classifier.held_out_logits
    assert held_out is not None and np.isfinite(held_out).all()


def test_an_intent_with_a_single_example_is_learnt_but_never_guessed_for_where_unseen() -> None:
    x, y = _blobs(300, 3, seed=5, noise=0.5)
    keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]])
    x, y = x.rows(keep), y[keep]
    classifier = IntentClassifier()
    classifier.fit(x, [["a", "b", "rare"][i] for i in y])
    assert classifier.predict_proba(x.rows(np.array([len(y) - 1]))).argmax() == 2
    held_out = classifier.held_out_logits
    assert held_out is not None
    # its one example was held out by a fold that never saw the class: -inf there, not a made-up score
    assert held_out[-1, 2] == -np.inf and np.isfinite(held_out[-1, :2]).all()
