"""Linear probes as scikit-learn estimators, and cross-validated scores with intervals.

>>> probe = LinearProbe(C=0.1).fit(acts, labels)        # doctest: +SKIP
>>> probe.predict_proba(acts)[:, 1]                     # doctest: +SKIP
>>> cross_validated(acts, labels)["accuracy"]           # doctest: +SKIP
{'rate': 0.97, 'lo': 0.94, 'hi': 0.99, 'k': 203, 'n': 210}
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from taxlens.metrics import wilson


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"activations must be [n, d_model], got shape {X.shape}")
    return X


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Standardise, then L2-regularised logistic regression. Nothing is learned in `__init__`."""

    def __init__(self, C: float = 0.1, standardize: bool = True, max_iter: int = 5000):
        self.C = C
        self.standardize = standardize
        self.max_iter = max_iter

    def fit(self, X, y):
        X, y = _as_matrix(X), np.asarray(y)
        self.classes_, counts = np.unique(y, return_counts=True)
        if len(self.classes_) != 2:
            raise ValueError(f"a probe needs two classes with examples of each; got classes {list(self.classes_)}")
        self.n_features_in_ = X.shape[1]
        self.scaler_ = StandardScaler(with_mean=self.standardize, with_std=self.standardize).fit(X)
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self.scaler_.transform(X), y)
        return self

    def _checked(self, X) -> np.ndarray:
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"width mismatch: X has d_model {X.shape[1]}, the probe was fitted on {self.n_features_in_}")
        return self.scaler_.transform(X)

    def decision_function(self, X) -> np.ndarray:
        return self.model_.decision_function(self._checked(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.model_.predict_proba(self._checked(X))

    def predict(self, X) -> np.ndarray:
        return self.model_.predict(self._checked(X))

    def raw_affine(self) -> tuple[np.ndarray, float]:
        """(weight [d_model], bias) with decision_function(X) = X @ weight + bias on raw activations: the
        standardisation folded into the logistic regression, so hooks can score a stream without the scaler."""
        coef, intercept = self.model_.coef_[0], float(self.model_.intercept_[0])
        if not self.standardize:
            return coef, intercept
        weight = coef / self.scaler_.scale_
        return weight, intercept - float((weight * self.scaler_.mean_).sum())

    def direction(self) -> np.ndarray:
        """The probe's normal in activation space (undoing the standardisation), unit norm: [d_model]."""
        w = self.raw_affine()[0]
        return w / np.linalg.norm(w)


def auroc_interval(auc: float, n_pos: int, n_neg: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Hanley & McNeil (1982) standard error of an AUROC, as a clipped normal interval."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    half = z * float(np.sqrt(max(var, 0.0)))
    return max(0.0, auc - half), min(1.0, auc + half)


def cross_validated(X, y, *, folds: int = 5, seed: int = 0, C: float = 0.1) -> dict:
    """Stratified k-fold out-of-fold accuracy (Wilson interval) and AUROC (Hanley-McNeil interval)."""
    X, y = _as_matrix(X), np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) != 2 or counts.min() < folds:
        raise ValueError(f"need two classes with at least {folds} examples each; got "
                         f"{dict(zip(classes.tolist(), counts.tolist()))}")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(LinearProbe(C=C), X, y, cv=cv, method="predict_proba")[:, 1]
    positive = y == classes[1]
    auc = float(roc_auc_score(positive, scores))
    lo, hi = auroc_interval(auc, int(positive.sum()), int((~positive).sum()))
    correct = int(((scores >= 0.5) == positive).sum())
    return {"accuracy": wilson(correct, len(y)), "auroc": {"value": round(auc, 6), "lo": round(lo, 6),
                                                           "hi": round(hi, 6), "n": len(y)}}
