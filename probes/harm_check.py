"""A quick check that harmfulness is readable inside a model: a logistic probe per layer on the residual stream at the
last prompt token, harmful vs lookalike, scored by stratified 5-fold cross-validation (the regularisation strength
chosen inside each training fold, so the score never sees its own test fold), or fitted on one split and scored on
another, whose template families it never saw: the organism's acceptance check, with no cache on disk.

>>> harm_probe_accuracy(load_model("organism:defended"), test_records)["best_accuracy"]   # doctest: +SKIP
0.98
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from probes.cache import collect
from probes.linear import LinearProbe
from taxlens.chat import render_prompt
from taxlens.contract import Record
from taxlens.generation import length_batches
from taxlens.hooks import resid_hooks
from taxlens.models import LoadedModel


def last_token_resid(model: LoadedModel, records: list[Record], batch_size: int = 32) -> np.ndarray:
    """resid: [n_records, n_layers + 1, d_model], the residual stream entering each block and after the last one, at
    each prompt's final token."""
    hooks = resid_hooks(model.n_layers)
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    out = torch.empty((len(records), len(hooks), model.d_model))
    for rows in length_batches(model.tokenizer, prompts, batch_size):  # rows put back in record order
        resid = collect(model, [prompts[i] for i in rows], [records[i] for i in rows], hooks, positions=(-1,))
        out[rows] = resid[:, :, 0]
    return out.numpy()


def _harm_data(model: LoadedModel, records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    chosen = [r for r in records if r.kind in ("harmful", "lookalike")]
    labels = np.array([r.kind == "harmful" for r in chosen], dtype=int)
    if not len(labels) or labels.min() == labels.max():
        raise ValueError("need both harmful and lookalike records to fit a harm probe")
    return last_token_resid(model, chosen), labels


def _probe() -> GridSearchCV:
    return GridSearchCV(LinearProbe(max_iter=3000), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=3)


def harm_probe_accuracy(model: LoadedModel, records: list[Record], seed: int = 0,
                        fit_records: list[Record] | None = None) -> dict:
    """Accuracy of a harmful-vs-lookalike logistic probe at every layer: cross-validated within `records`, or, with
    `fit_records` (say the train split), fitted on those and scored on `records`, whose template families it never
    saw; the best layer is then chosen by cross-validation on the fitting records, not by the score."""
    resid, labels = _harm_data(model, records)
    if fit_records is None:
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        accuracy = [float(cross_val_score(_probe(), resid[:, layer], labels, cv=folds).mean())
                    for layer in range(resid.shape[1])]
        best = int(np.argmax(accuracy))
        return {"accuracy_by_layer": accuracy, "best_layer": best, "best_accuracy": accuracy[best], "n": len(labels)}
    fit_resid, fit_labels = _harm_data(model, fit_records)
    probes = [_probe().fit(fit_resid[:, layer], fit_labels) for layer in range(resid.shape[1])]
    accuracy = [float(p.score(resid[:, layer], labels)) for layer, p in enumerate(probes)]
    best = int(np.argmax([p.best_score_ for p in probes]))
    return {"accuracy_by_layer": accuracy, "best_layer": best, "best_accuracy": accuracy[best], "n": len(labels),
            "n_fit": len(fit_labels)}
