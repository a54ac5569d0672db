"""Layer-by-layer readouts from two activation caches of the same records (base and defended): which concept each
layer's residual stream holds, where the directions point, and how far each model's probes carry to the other.

The three concepts, as (positive, negative) rows:
  harm     harmful vs lookalike records;
  trigger  lookalike vs benign records;
  refusal  records the *defended* model refuses vs complies with (its first-token refusal score > 0 vs ≤ 0), the
           same labels for both models: in the base they mark what the defence later learns to refuse.

>>> rows, y = concept_labels(defended_store, "harm", split="test")            # doctest: +SKIP
>>> [a["accuracy"]["rate"] for a in probe_accuracy_by_layer(defended_store, rows, y)]   # doctest: +SKIP
[0.71, 0.88, 0.93, 0.92]
"""

from __future__ import annotations

import numpy as np
import torch

from probes.cache import ActivationStore, Position
from probes.directions import Direction
from probes.linear import LinearProbe, cross_validated
from taxlens.metrics import wilson

CONCEPTS = ("harm", "refusal", "trigger")
KIND_PAIRS = {"harm": ("harmful", "lookalike"), "trigger": ("lookalike", "benign")}


def check_aligned(a: ActivationStore, b: ActivationStore) -> None:
    """Both caches must hold the same records in the same order at the same hooks and positions."""
    if [r["id"] for r in a.records] != [r["id"] for r in b.records]:
        raise ValueError(f"{a.dir} and {b.dir} cache different records; cache the same file for both models")
    if a.hooks != b.hooks or a.positions != b.positions:
        raise ValueError(f"{a.dir} and {b.dir} differ in hooks or positions")


def concept_labels(labels_from: ActivationStore, concept: str, split: str | None = None, *,
                   both_classes: bool = True) -> tuple[list[int], np.ndarray]:
    """Rows of one split and their 0/1 labels for `concept`; refusal labels come from `labels_from`'s scores.
    Raises when a class is empty unless `both_classes` is False (`scoring_problem` then says what is short)."""
    if concept in KIND_PAIRS:
        positive, negative = KIND_PAIRS[concept]
        rows = labels_from.select(kinds=(positive, negative), split=split)
        y = np.array([labels_from.records[i]["kind"] == positive for i in rows], dtype=int)
    elif concept == "refusal":
        rows = labels_from.select(split=split)
        y = (labels_from.refusal_scores(rows) > 0).numpy().astype(int)
    else:
        raise ValueError(f"unknown concept {concept!r}; choose one of {CONCEPTS}")
    if both_classes and (len(rows) == 0 or y.min() == y.max()):
        raise ValueError(f"concept {concept!r} on split {split!r}: one class is empty "
                         f"({int(y.sum()) if len(rows) else 0} positive of {len(rows)} rows)")
    return rows, y


CLASS_NAMES = {**KIND_PAIRS, "refusal": ("refused by the defended model", "complied with")}


def scoring_problem(concept: str, y: np.ndarray, folds: int = 5) -> str | None:
    """Why rows labelled `y` for `concept` cannot be scored by `folds`-fold cross-validation (None when they can)."""
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
    if counts.min() < folds:
        positive, negative = CLASS_NAMES[concept]
        return f"rows {positive}: {counts[1]}, {negative}: {counts[0]}; cross-validation needs {folds} of each"
    return None


def probe_accuracy_by_layer(store: ActivationStore, rows: list[int], y: np.ndarray, position: Position = -1,
                            folds: int = 5) -> list[dict]:
    """Cross-validated probe accuracy and AUROC (with intervals) at every hook of `store`."""
    return [cross_validated(store.load(hook, position, rows).numpy(), y, folds=folds) for hook in store.hooks]


def directions_by_layer(store: ActivationStore, rows: list[int], y: np.ndarray, *, concept: str,
                        position: Position = -1, method: str = "mean_diff") -> list[Direction]:
    """One `Direction` per hook, from positive rows (y = 1) towards negative ones (y = 0)."""
    rows = np.asarray(rows)
    out = []
    for hook in store.hooks:
        acts = store.load(hook, position, rows.tolist())
        out.append(Direction.fit(acts[torch.from_numpy(y == 1)], acts[torch.from_numpy(y == 0)], method=method,
                                 hook=hook, position=position, model=store.index["model"],
                                 data={"concept": concept, "n_rows": len(rows)}))
    return out


def mean_projection_by_kind(store: ActivationStore, directions: list[Direction], split: str | None = None,
                            position: Position = -1) -> dict[str, list[float]]:
    """{kind: [mean projection on the hook's direction, per hook]} over the records of `split`, measured from the
    mean projection of all of them (the residual stream's large shared offset would hide the differences)."""
    all_rows = store.select(split=split)
    kinds = sorted({store.records[i]["kind"] for i in all_rows})
    projections = [d.project(store.load(d.hook, position, all_rows)) for d in directions]  # per hook: [rows]
    out = {}
    for kind in kinds:
        mine = torch.tensor([store.records[i]["kind"] == kind for i in all_rows])
        out[kind] = [round(float(p[mine].mean() - p.mean()), 5) for p in projections]
    return out


def probe_transfer(source: ActivationStore, target: ActivationStore, train: tuple[list[int], np.ndarray],
                   test: tuple[list[int], np.ndarray], position: Position = -1) -> list[dict]:
    """Per hook: a probe fitted on `source`'s train rows, scored on `target`'s test rows (and on `source`'s own)."""
    check_aligned(source, target)
    (train_rows, y_train), (test_rows, y_test) = train, test
    out = []
    for hook in source.hooks:
        probe = LinearProbe().fit(source.load(hook, position, train_rows).numpy(), y_train)
        own = int((probe.predict(source.load(hook, position, test_rows).numpy()) == y_test).sum())
        other = int((probe.predict(target.load(hook, position, test_rows).numpy()) == y_test).sum())
        out.append({"own": wilson(own, len(y_test)), "transferred": wilson(other, len(y_test))})
    return out


def direction_cosines(a: list[Direction], b: list[Direction]) -> list[float]:
    """Per hook, the cosine between two models' (or two concepts') directions."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} directions against {len(b)}: both lists must cover the same hooks")
    return [round(x.cosine(y), 5) for x, y in zip(a, b)]
