"""Would a gate fitted otherwise send more of the tax to the ablation? Linear gates (harmful + injected vs benign +
lookalike) fitted on train's cached streams of the defended model in several ways, each scored on val at the
largest threshold of the gated search's grid that passes at most its margin (2%) of val's harmful and of its
injected prompts: how many tax records (the base does them, the defended model does not) it then sends to the
ablation. Every variant is a linear map of the streams, so any of them would drop into `HarmGate` unchanged. An
experiment for the question, not a shipped search; train and val only are cached.

    python benchmarks/gate_fits.py REPORTS_DIR --out OUT.json [--cache DIR]

REPORTS_DIR: `base.json` and `defended.json` (`taxlens eval` on the val split).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from probes.cache import ActivationStore, cache_activations
from probes.linear import LinearProbe
from steering.fit import GATE_POSITIVE
from steering.search import MARGIN, THRESHOLDS
from taxlens.contract import load_records
from taxlens.eval_report import EvalReport
from taxlens.hooks import resid_post_hooks
from taxlens.models import load_model

POSITIONS = {"last": (-1,), "user_end": ("user_end",), "both": (-1, "user_end")}


def calibrated(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """A fixed direction's scale and bias from a 1-D logistic fit on train."""
    lr = LogisticRegression(C=1e6, max_iter=5000).fit((X @ w)[:, None], y)
    return w * lr.coef_[0, 0], float(lr.intercept_[0])


FITS = {f"logistic C={C}": (lambda X, y, C=C: LinearProbe(C=C).fit(X, y).raw_affine())
        for C in (0.001, 0.003, 0.01, 0.03, 0.1, 1.0)}
FITS["mass-mean"] = lambda X, y: calibrated(X[y == 1].mean(0) - X[y == 0].mean(0), X, y)
FITS["LDA shrinkage"] = lambda X, y: calibrated(
    LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(X, y).coef_[0], X, y)
# (fit, layers read, position): every fit on blocks 0-3's last token, then the shipped fit elsewhere
VARIANTS = ([(name, (0, 1, 2, 3), "last") for name in FITS] + [("logistic C=0.01", (3,), "last")]
            + [(f"logistic C={C}", (0, 1, 2, 3), pos) for pos in ("user_end", "both") for C in (0.01, 0.1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports")
    parser.add_argument("--model", default="organism:defended")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--cache", default=None, help="activation cache folder (default: OUT's folder/cache)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cache = Path(args.cache or Path(args.out).parent / "cache")
    if not (cache / "index.json").is_file():
        model = load_model(args.model)
        records = [r for r in load_records(args.data) if r.split in ("train", "val")]
        cache_activations(model, records, cache, hooks=resid_post_hooks(model.n_layers), positions=(-1, "user_end"))
    store = ActivationStore(cache)
    hooks = [h for h in store.hooks if h.startswith("resid_post.")]
    base, defended = (EvalReport.read(Path(args.reports) / f"{n}.json").ok_by_id(("lookalike",))
                      for n in ("base", "defended"))

    def streams(split: str, layers: tuple[int, ...], position: str):
        rows = store.select(split=split)
        X = torch.stack([store.load(hooks[layer], p, rows) for p in POSITIONS[position] for layer in layers], 1)
        y = np.array([store.records[i]["kind"] in GATE_POSITIVE for i in rows], dtype=int)
        return rows, X.reshape(len(rows), -1).double().numpy(), y

    out = []
    for name, layers, position in VARIANTS:
        _, X_train, y_train = streams("train", layers, position)
        rows, X_val, y_val = streams("val", layers, position)
        w, b = FITS[name](X_train, y_train)
        p = 1 / (1 + np.exp(-(X_val @ w + b)))
        kinds = np.array([store.records[i]["kind"] for i in rows])
        ids = [store.records[i]["id"] for i in rows]
        tax = np.array([base.get(i, False) and not defended.get(i, True) for i in ids])
        held = [t for t in THRESHOLDS if all((p[kinds == k] < t).mean() <= MARGIN for k in GATE_POSITIVE)]
        row = {"gate": name, "layers": list(layers), "position": position,
               "auroc_train": round(roc_auc_score(y_train, 1 / (1 + np.exp(-(X_train @ w + b)))), 4),
               "auroc_val": round(roc_auc_score(y_val, p), 4), "threshold": max(held, default=None)}
        if held:
            t = max(held)
            row |= {"tax_ablated": int((p[tax] < t).sum()), "tax": int(tax.sum()),
                    **{f"{k}_ablated": int((p[kinds == k] < t).sum()) for k in ("benign", "lookalike")},
                    **{f"{k}_passed": int((p[kinds == k] < t).sum()) for k in GATE_POSITIVE}}
        out.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
