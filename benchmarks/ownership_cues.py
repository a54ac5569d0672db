"""Which ownership words does a model's harm reading hold against a request? A probe shaped like the gated config's
gate (harmful + injected vs benign + lookalike; logistic, C = 0.01, on the streams after every block at the last
prompt token) is fitted on train for each model, then read on val: the share of benign and lookalike requests it
reads p(harmful) ≥ 0.5 on, among those that say "our" and those that say "my", with Wilson intervals. Fitting it
on the base's streams as well tells whether the defence made a cue count as harm. An experiment for the question;
train and val only are cached.

    python benchmarks/ownership_cues.py --out OUT.json [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from probes.cache import ActivationStore, cache_activations
from steering.fit import GATE_POSITIVE, gate_probe
from taxlens.contract import load_records
from taxlens.hooks import resid_post_hooks
from taxlens.metrics import wilson
from taxlens.models import load_model

CUES = {"our": r"\bour\b", "my": r"\bmy\b|\bmine\b"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--models", nargs="+", default=["organism:defended", "organism:base"])
    parser.add_argument("--cache", default=None, help="folder for one activation cache per model (default: OUT's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    records = [r for r in load_records(args.data) if r.split in ("train", "val")]
    said = {r.id: [m["content"] for m in r.messages if m["role"] == "user"][-1] for r in records}
    out = {}
    for name in args.models:
        cache = Path(args.cache or Path(args.out).parent) / ("cache_" + re.sub(r"\W+", "_", name))
        if not (cache / "index.json").is_file():
            model = load_model(name)
            cache_activations(model, records, cache, hooks=resid_post_hooks(model.n_layers), positions=(-1,))
        store = ActivationStore(cache)
        hooks = [h for h in store.hooks if h.startswith("resid_post.")]

        def streams(split: str):
            rows = store.select(split=split)
            y = np.array([store.records[i]["kind"] in GATE_POSITIVE for i in rows], dtype=int)
            return rows, torch.stack([store.load(h, -1, rows) for h in hooks], 1), y

        _, train, y = streams("train")
        gate = gate_probe(train, y, tuple(range(len(hooks))))
        rows, val, _ = streams("val")
        p = gate.probability(val).numpy()
        helpful = [j for j, i in enumerate(rows) if store.records[i]["kind"] in ("benign", "lookalike")]
        out[name] = {}
        for cue, pattern in CUES.items():
            chosen = [j for j in helpful if re.search(pattern, said[store.records[rows[j]]["id"]], re.I)]
            out[name][cue] = wilson(int((p[chosen] >= 0.5).sum()), len(chosen))
        print(name, json.dumps(out[name]), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
