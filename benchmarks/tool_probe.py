"""Does a model that calls the wrong tool on a held-out phrasing still know, inside, which tool was asked for? A
multinomial logistic probe per layer on the residual stream at the last prompt token, fitted on the train split's
benign and lookalike records to read the expected call's tool, scored on SPLIT's (families and phrasings it never
saw), beside the tool the model itself called there (from a `taxlens eval` report of the same model and split).

    taxlens eval --model organism:base --data datasets/toolcalls.jsonl --split val --out runs/base_val.json
    python benchmarks/tool_probe.py organism:base runs/base_val.json

If the probe names the right tool where the model's call does not, the request was understood and the failure is in
the layers after; if the probe fails too, the model never read the request's words as asking for that tool.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes.harm_check import last_token_resid
from taxlens.contract import Record, load_records
from taxlens.labels import parse_reply
from taxlens.metrics import format_rate, wilson
from taxlens.models import load_model

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("benign", "lookalike")


def _probe():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))


@dataclass(frozen=True)
class ToolReadout:
    """Per layer, the held-out records whose expected tool the probe names; the layer chosen by 3-fold CV on the
    fitting records; the records whose own call names it; and, where the call did not, how many the chosen probe
    names right."""

    probe_right: list[int]
    best_layer: int
    own_right: int
    n: int
    rescued: int


def tool_readout(model, fit: list[Record], held: list[Record], called: list[str | None]) -> ToolReadout:
    """Probes fitted on `fit` (records with an expected call) to read its tool, scored on `held`, beside `called`
    (the tool the model called on each held-out record, None where it called none)."""
    y_fit = np.array([r.expected["name"] for r in fit])
    y_held = np.array([r.expected["name"] for r in held])
    tools, counts = np.unique(y_fit, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"the fitting records name {str(tools[counts.argmin()])!r} once; each tool needs two, "
                         "to choose a layer by cross-validation")
    folds = min(3, int(counts.min()))
    x_fit, x_held = last_token_resid(model, fit), last_token_resid(model, held)
    cv = [cross_val_score(_probe(), x_fit[:, layer], y_fit, cv=folds).mean() for layer in range(x_fit.shape[1])]
    best = int(np.argmax(cv))
    reads = [_probe().fit(x_fit[:, layer], y_fit).predict(x_held[:, layer]) for layer in range(x_fit.shape[1])]
    wrong = np.array(called, dtype=object) != y_held
    return ToolReadout(probe_right=[int((read == y_held).sum()) for read in reads], best_layer=best,
                       own_right=int((~wrong).sum()), n=len(held),
                       rescued=int((reads[best][wrong] == y_held[wrong]).sum()))


def called_tools(report: Path, ids: list[str], split: str) -> list[str | None]:
    """The tool each of `ids` called first in a `taxlens eval` report of `split` (None where no call parses)."""
    rows = json.loads(report.read_text())
    if rows.get("split") != split:
        raise SystemExit(f"{report}: a report of split {rows.get('split')!r}, not {split!r}")
    by_id = {r["id"]: r for r in rows["records"]}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SystemExit(f"{report}: no reply for {len(missing)} {split} records, e.g. {missing[0]}")
    return [calls[0].get("name") if (calls := parse_reply(by_id[i]["reply"]).calls) else None for i in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="anything --model takes (organism:base, a folder, an HF id)")
    parser.add_argument("report", type=Path, help="`taxlens eval` report of the same model on --split")
    parser.add_argument("--data", default=str(ROOT / "datasets" / "toolcalls.jsonl"))
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    fit = [r for r in load_records(args.data, split="train") if r.kind in KINDS]
    held = [r for r in load_records(args.data, split=args.split) if r.kind in KINDS]
    out = tool_readout(model, fit, held, called_tools(args.report, [r.id for r in held], args.split))
    print(f"{args.model} on {args.split} ({out.n} benign and lookalike records; probes fitted on {len(fit)} train)")
    for layer, right in enumerate(out.probe_right):
        mark = "  <- chosen on train (3-fold CV)" if layer == out.best_layer else ""
        where = f"entering block {layer}" if layer < model.n_layers else "after the last block"
        print(f"  resid {where}: probe names the tool {format_rate(wilson(right, out.n))}{mark}")
    print(f"  the model's own call names the tool {format_rate(wilson(out.own_right, out.n))}")
    print(f"  where the model called another tool or none ({out.n - out.own_right}), the chosen probe names the right "
          f"one in {out.rescued}")


if __name__ == "__main__":
    main()
