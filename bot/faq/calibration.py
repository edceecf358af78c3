"""Turning (dense cosine, normalised BM25, selector probability) into P(this entry is the right answer).

Two stages, both fitted when the index is built, on the FAQ itself (nothing hand-labelled):

1. A logistic model per query language scores one entry against one query:
   ``logit = bias + w_dense · dense + w_lexical · lexical + w_selector · evidence(selector)``, where
   `selector_evidence` maps the selector's probability to its log-odds, scaled to [0, 2] (0 → 0, ½ → 1, 1 → 2):
   probabilities combine as log-odds, and on the raw scale 0.9 and 0.999 were nearly the same evidence (on the
   blind dev sets at the index, right answers at p ≥ 0.8 +2.0 points zh, +1.4 en, wrong answers +0.2 / 0). It
   learns from
   - positives — leave-one-phrasing-out: every question phrasing (up to `MAX_QUERIES` per language) is taken
     out of the index and asked as a query; its features against its own entry are a positive (the selector's
     probability comes from a fold model that did not see it either, see selector.py);
   - in-domain negatives — for the same left-out phrasing, the `HARD_NEGATIVES` best-looking other entries and
     `RANDOM_NEGATIVES` other entries at random (the wrong answers the bot could give);
   - out-of-scope negatives — the `BACKGROUND_NEGATIVES` best entries for each question of `background.py`
     (volcanoes, passports, "are you a human"…): what the top hit of an out-of-scope question looks like here.
   Positives carry half of the total weight, negatives the other half (`BACKGROUND_SHARE` of it out-of-scope).
2. One logit per entry is not yet a probability: fused scores sat near 1.0 for right and wrong answers alike,
   because two entries can both look right. `fit_distribution` fits a temperature and a "none of them" logit so
   that ``softmax(candidates' logits, none)`` is calibrated on the left-out phrasings (the right entry is known)
   and the background questions (the right answer is none, `NONE_SHARE` of the weight). Entries that compete
   share the probability, so one threshold (`kefu.thresholds.faq`) means "this likely to be right" for every
   query and every FAQ; `cross_validated` records what a few thresholds would do (printed at `kefu train`).

Constraints that keep it sane on small or odd FAQs:

- weights are bounded below by 0: more similarity never lowers the score;
- the selector's prior weight is 0: with too few phrasings to fit, the score is what dense and BM25 say;
- the dense weight is held at 0 for a language where the dense score alone finds the left-out phrasing's
  own entry less than `DENSE_MIN_TOP1` of the time. all-MiniLM-L6-v2 reads most Chinese characters as
  [UNK], so on Chinese it is near chance (23% on the sample FAQ, English 83%), and its zh–zh cosines
  (0.6–1.0 between unrelated questions) must not make a Chinese question look answered. A multilingual
  model in config.yml passes the test and gets its dense weight back without a code change;
- an L2 penalty pulls the weights towards per-language priors (`PRIORS`: what the fit gives on the sample
  FAQ of tests/test_faq.py), with a strength that fades as the FAQ grows (λ = `PRIOR_STRENGTH` / positives);
  with fewer than `MIN_POSITIVES` phrasings in a language the priors are used as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

Value = np.ndarray | float

MAX_QUERIES = 2000
HARD_NEGATIVES = 1  # per phrasing: the other entry that looks most like the right one
RANDOM_NEGATIVES = 4  # per phrasing: other entries at random
BACKGROUND_NEGATIVES = 2  # per background question: its best entries
BACKGROUND_SHARE = 0.7  # of the negatives' weight
MIN_POSITIVES = 8
DENSE_MIN_TOP1 = 0.5  # all-MiniLM-L6-v2 on the sample FAQ: en 0.83, zh 0.23 (chance 0.08)
PRIOR_STRENGTH = 1.0  # λ in λ/n_pos · ‖w − w_prior‖²
CV_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
NONE_SHARE = 0.2  # of the weight in fitting "none of them": out-of-scope questions among those a shop gets
SELECTOR_FLOOR = 1e-4  # selector probabilities are clipped to [floor, 1 - floor] before taking log-odds
# What the selector "says" of an entry it was never trained on (published since `kefu train`): log-odds 0, no
# evidence either way. Its 0 would be evidence against the entry — the one a shopper's question matches word for
# word would lose to the known entry the selector sends such questions to.
NO_OPINION = 0.5


def selector_evidence(probability: Value) -> np.ndarray:
    """The selector's log-odds scaled to [0, 2]: 0 for p ≤ SELECTOR_FLOOR (no opinion), 1 for ½, 2 for certainty."""
    p = np.clip(np.asarray(probability, dtype=np.float64), SELECTOR_FLOOR, 1 - SELECTOR_FLOOR)
    return 1.0 + np.log(p / (1 - p)) / np.log(1 / SELECTOR_FLOOR - 1)


@dataclass
class Calibration:
    bias: float
    dense: float
    lexical: float
    selector: float = 0.0
    fitted: bool = False
    positives: int = 0
    negatives: int = 0
    dense_top1: float = 0.0
    # how sure: P(entry) = softmax over the candidates' logits and a "none of them" logit, at a temperature
    temperature: float = 1.0
    none_logit: float = 0.0
    # what answering at a few probability thresholds would do on left-out phrasings and background questions
    cross_validated: dict[str, list[float]] = field(default_factory=dict)
    # the selector's weight applies to its log-odds (`selector_evidence`); False: to its probability (older models)
    selector_log_odds: bool = True

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """P(each entry is the right answer) for candidates with these logits; "none of them" takes the rest."""
        z = np.append(np.asarray(logits, dtype=np.float64), self.none_logit) / self.temperature
        z = np.exp(z - z.max())
        return (z[:-1] / z.sum()).astype(np.float32)

    def logit(self, dense: Value, lexical: Value, selector: Value = 0.0) -> np.ndarray | float:
        """`selector` is the selector's probability (0 for an entry it does not know)."""
        evidence = selector_evidence(selector) if self.selector_log_odds else np.asarray(selector)
        return (self.bias + self.dense * np.asarray(dense) + self.lexical * np.asarray(lexical)
                + self.selector * evidence)

    def score(self, dense: Value, lexical: Value, selector: Value = 0.0) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(dense, lexical, selector)))

    def describe(self) -> str:
        """One line for training output: the fitted weights and whether the dense score is used."""
        how = "fitted" if self.fitted else "prior (too few phrasings to fit)"
        cv = self.cross_validated
        answering = "; ".join(
            f"p≥{t:.1f}: {a:.0%} answered, {r:.1%} of them right, {b:.0%} off-topic answered"
            for t, a, r, b in zip(cv.get("threshold", []), cv.get("answered", []), cv.get("right", []),
                                  cv.get("background_answered", []), strict=True))
        selector = "evidence(selector)" if self.selector_log_odds else "selector"
        return (f"logit = {self.bias:.1f} + {self.dense:.1f}·dense + {self.lexical:.1f}·lexical + "
                f"{self.selector:.1f}·{selector}, {how}, dense top-1 on left-out phrasings {self.dense_top1:.0%}; "
                f"P(entry) = softmax(logits, none {self.none_logit:.1f}) at temperature {self.temperature:.2f}"
                + (f"; on left-out phrasings, {answering}" if answering else ""))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        names = ("bias", "dense", "lexical", "selector", "fitted", "positives", "negatives", "dense_top1",
                 "temperature", "none_logit", "cross_validated")
        return cls(**{k: data[k] for k in names if k in data}, selector_log_odds=data.get("selector_log_odds", False))


# What the fit gives on the sample FAQ of tests/test_faq.py (12 entries, 4 + 4 phrasings each, with tags).
PRIORS: dict[str, Calibration] = {
    "en": Calibration(bias=-10.0, dense=17.6, lexical=6.7),
    "zh": Calibration(bias=-3.6, dense=0.0, lexical=21.7),
}


def prior(language: str) -> Calibration:
    base = PRIORS.get(language, PRIORS["en"])
    return Calibration(base.bias, base.dense, base.lexical, base.selector)


def fit(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray, language: str, dense_top1: float
) -> Calibration:
    """Weighted, bounded, prior-anchored logistic regression on (dense, lexical, selector) → right entry or not.

    `weights` (mean 1) set how much each sample counts; the caller balances positives against negatives.
    `dense_top1`: how often the dense score alone put a left-out phrasing's own entry first; below
    `DENSE_MIN_TOP1` the dense weight is held at 0 (the model cannot read this language).
    """
    from scipy.optimize import minimize

    start = prior(language)
    use_dense = dense_top1 >= DENSE_MIN_TOP1
    positives = int(labels.sum())
    negatives = int(len(labels) - positives)
    if positives < MIN_POSITIVES or negatives < MIN_POSITIVES:
        start.positives, start.negatives, start.dense_top1 = positives, negatives, dense_top1
        return start
    if not use_dense:
        start.dense = 0.0
    x = features.astype(np.float64)
    x[:, 2] = selector_evidence(x[:, 2])
    y = labels.astype(np.float64)
    weight = weights.astype(np.float64)
    anchor = np.array([start.dense, start.lexical, start.selector])
    lam = PRIOR_STRENGTH / positives

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        value = float(np.mean(weight * (np.logaddexp(0.0, z) - y * z)))
        residual = weight * (p - y) / len(y)
        grad = np.concatenate([[residual.sum()], x.T @ residual])
        diff = theta[1:] - anchor
        value += lam * float(diff @ diff)
        grad[1:] += 2 * lam * diff
        return value, grad

    result = minimize(
        loss,
        np.array([start.bias, start.dense, start.lexical, start.selector]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(None, None), (0.0, None if use_dense else 0.0), (0.0, None), (0.0, None)],
    )
    bias, dense, lexical, selector = (float(v) for v in result.x)
    return Calibration(
        bias, dense, lexical, selector, fitted=True, positives=positives, negatives=negatives, dense_top1=dense_top1
    )


def fit_distribution(calibration: Calibration, logits: np.ndarray, own: np.ndarray, background: np.ndarray) -> None:
    """Fit the temperature and the "none" logit (in place) so that `probabilities` are calibrated: on left-out
    phrasings (`logits` against every entry, `own` the right one) and out-of-scope background questions (the right
    answer is none). Background questions count `NONE_SHARE` of the total, an out-of-scope rate a shop may see."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    if len(logits) < MIN_POSITIVES:
        return
    x = np.concatenate([logits, background]).astype(np.float64)
    target = np.concatenate([own, np.full(len(background), x.shape[1])]).astype(np.int64)
    weight = np.concatenate([np.full(len(logits), (1 - NONE_SHARE) / len(logits)),
                             np.full(len(background), NONE_SHARE / max(len(background), 1))])

    def loss(theta: np.ndarray) -> float:
        temperature, none = np.exp(theta[0]), theta[1]
        z = np.concatenate([x, np.full((len(x), 1), none)], axis=1) / temperature
        return float(np.sum(weight * (logsumexp(z, axis=1) - z[np.arange(len(z)), target])))

    result = minimize(loss, np.array([0.0, 0.0]), method="L-BFGS-B", bounds=[(-3.0, 3.0), (-30.0, 30.0)])
    calibration.temperature, calibration.none_logit = float(np.exp(result.x[0])), float(result.x[1])
    top = np.array([calibration.probabilities(row).max() for row in x])
    right = np.concatenate([logits.argmax(axis=1) == own, np.zeros(len(background), dtype=bool)])
    is_background = np.arange(len(x)) >= len(logits)
    cv: dict[str, list[float]] = {"threshold": [], "answered": [], "right": [], "background_answered": []}
    for threshold in CV_THRESHOLDS:
        answered = (top >= threshold) & ~is_background
        cv["threshold"].append(threshold)
        cv["answered"].append(round(float(answered.sum() / max(len(logits), 1)), 4))
        cv["right"].append(round(float(right[answered].mean()) if answered.any() else 1.0, 4))
        cv["background_answered"].append(
            round(float((top[is_background] >= threshold).mean()) if is_background.any() else 0.0, 4))
    calibration.cross_validated = cv
