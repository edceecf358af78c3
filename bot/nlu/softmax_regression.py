"""Multinomial logistic regression on a dense block beside a sparse one, fitted by a truncated Newton method.

scikit-learn's LogisticRegression (newton-cg) minimises the same objective the same way, but over one matrix: the
sentence embedding stored as sparse columns makes each product with the data ~3× dearer than a BLAS product with
the dense block plus a sparse product with the n-grams, and its float64 parameter vectors double the memory
traffic of every step of the conjugate gradient. On the demo shop (`kefu train`, 2 cores) one fit of the FAQ
entry selector took 25.5 s with it and 7.7 s here, the intent classifier's 9.1 s and 5.5 s, with the same
held-out accuracy and log-loss.

Objective (scikit-learn's): the weighted mean cross-entropy + ‖W‖² / (2·C·Σw), intercepts not penalised; fitted
when no gradient component exceeds `tol`. Each Newton step solves H·s = −g by conjugate gradients to a tolerance
that tightens as g shrinks (Dembo and Steihaug's forcing term, as in scikit-learn), then backtracks on the
Armijo condition.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax

TOL = 1e-4
MAX_ITER = 100  # Newton steps; the demo shop's fits take 7-15
MAX_CG = 200  # conjugate-gradient steps per Newton step
ARMIJO = 1e-4
MIN_STEP = 1e-6


def fit(
    dense: np.ndarray,
    sparse: sp.csr_matrix,
    y: np.ndarray,
    n_classes: int,
    weight: np.ndarray,
    c: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    tol: float = TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_features, n_classes), dense features first, and intercepts (n_classes,), float32.

    `y` holds class numbers 0..n_classes-1; `weight` one positive weight per example; `start`, weights and
    intercepts to start from (zero by default); `tol`, the largest gradient component left at the end."""
    problem = _Problem(dense, sparse, y, n_classes, weight, c)
    theta = np.zeros((problem.n_features + 1, n_classes), dtype=np.float32)  # last row: the intercepts
    if start is not None:
        theta[:-1], theta[-1] = start
    loss, log_p = problem.loss(theta)
    for _ in range(MAX_ITER):
        p = np.exp(log_p)
        gradient = problem.gradient(theta, p)
        if np.abs(gradient).max() <= tol:
            break
        step = problem.newton_step(gradient, p)
        slope = float(np.vdot(gradient, step))
        size = 1.0
        while size >= MIN_STEP:  # backtrack until the loss falls enough (Armijo)
            candidate = theta + np.float32(size) * step
            candidate_loss, candidate_log_p = problem.loss(candidate)
            if candidate_loss <= loss + ARMIJO * size * slope:
                break
            size /= 2
        else:  # no descent left at float32 precision
            break
        theta, loss, log_p = candidate, candidate_loss, candidate_log_p
    return theta[:-1], theta[-1].copy()


class _Problem:
    """The data, and the objective's value, gradient and Hessian products for parameters θ = [W; b]."""

    def __init__(
        self, dense: np.ndarray, sparse: sp.csr_matrix, y: np.ndarray, n_classes: int, weight: np.ndarray, c: float
    ) -> None:
        self.dense = np.asarray(dense, dtype=np.float32)
        self.dense_t = np.ascontiguousarray(self.dense.T)
        self.sparse = sparse.astype(np.float32).tocsr()
        self.sparse_t = self.sparse.T.tocsr()
        self.d = self.dense.shape[1]
        self.n_features = self.d + sparse.shape[1]
        self.rows = np.arange(len(y))
        self.y = y
        total = float(np.sum(weight))
        self.weight = (np.asarray(weight, dtype=np.float64) / total).astype(np.float32)[:, None]
        self.l2 = np.float32(1.0 / (c * total))
        self.n_classes = n_classes

    def scores(self, theta: np.ndarray) -> np.ndarray:
        z = self.dense @ theta[: self.d]
        z += self.sparse @ theta[self.d : -1]
        z += theta[-1]
        return z

    def backward(self, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Xᵀ·r for the weights, Σr for the intercepts, plus the penalty's part for θ."""
        out = np.empty((self.n_features + 1, self.n_classes), dtype=np.float32)
        np.matmul(self.dense_t, r, out=out[: self.d])
        out[self.d : -1] = self.sparse_t @ r
        out[-1] = r.sum(axis=0)
        out[:-1] += self.l2 * theta[:-1]
        return out

    def loss(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_p = log_softmax(self.scores(theta), axis=1)
        data = -float(np.dot(self.weight[:, 0].astype(np.float64), log_p[self.rows, self.y]))
        weights = theta[:-1]
        return data + 0.5 * float(self.l2) * float(np.vdot(weights, weights)), log_p

    def gradient(self, theta: np.ndarray, p: np.ndarray) -> np.ndarray:
        r = p.copy()
        r[self.rows, self.y] -= 1.0
        r *= self.weight
        return self.backward(r, theta)

    def hessian_times(self, v: np.ndarray, p: np.ndarray) -> np.ndarray:
        z = self.scores(v)
        r = p * (z - (p * z).sum(axis=1, keepdims=True))
        r *= self.weight
        return self.backward(r, v)

    def newton_step(self, gradient: np.ndarray, p: np.ndarray) -> np.ndarray:
        """An approximate solution s of H·s = −g (conjugate gradients)."""
        step = np.zeros_like(gradient)
        residual = -gradient
        direction = residual.copy()
        rr = float(np.vdot(residual, residual))
        g1 = float(np.abs(gradient).sum())
        enough = min(0.5, np.sqrt(g1)) * g1
        for _ in range(MAX_CG):
            if float(np.abs(residual).sum()) <= enough:
                break
            h_direction = self.hessian_times(direction, p)
            curvature = float(np.vdot(direction, h_direction))
            if curvature <= 0:  # numerically flat: take what we have, or the steepest descent
                return step if step.any() else -gradient
            alpha = np.float32(rr / curvature)
            step += alpha * direction
            residual -= alpha * h_direction
            rr_next = float(np.vdot(residual, residual))
            direction *= np.float32(rr_next / rr)
            direction += residual
            rr = rr_next
        return step
