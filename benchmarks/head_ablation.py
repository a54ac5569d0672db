"""Does one attention head carry the defended model's refusals, harmful ones included? Its output (`z`, before the
output projection) at every position is set to zero, or to its mean over train benign prompts the model complies
with, and each val kind is screened on the first reply token: how many refusals flip to compliance, and the
first-token KL on the prompts the model already complies with. Ungated, as a question about the head; with
`--steer C`, also zeroed only on the prompts C's gate passes (p(harmful) read on the unsteered stream, a first
pass), beside C itself: would a gate in front of the head beat C's own intervention?

    python benchmarks/head_ablation.py --model organism:defended --layer 3 --head 1 [--steer organism:gated] \
        --out OUT.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import torch

from steering.config import load_config
from taxlens.chat import render_prompt
from taxlens.contract import load_records
from taxlens.generation import encode_batch, length_batches
from taxlens.hooks import act_name
from taxlens.models import load_model
from taxlens.scoring import log_kl, model_refusal_score


@torch.no_grad()
def screen(model, records, layer: int, head: int, edit=None, where: torch.Tensor | None = None,
           steering=None, batch_size: int = 32):
    """Per record: the refusal score and first-token log-probabilities, and the head's `z` at the last token, with
    `edit` (z of the head: [batch, pos, d_head] → the same) applied when given, to the records `where` marks (all
    when None); or with `steering` applied instead."""
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    scores, logps, last = [None] * len(prompts), [None] * len(prompts), [None] * len(prompts)
    for rows in length_batches(model.tokenizer, prompts, batch_size):
        batch = encode_batch(model.tokenizer, [prompts[i] for i in rows], model.device)
        chosen = torch.ones(len(rows), dtype=torch.bool) if where is None else where[rows]

        def hook(z, hook):  # z: [batch, pos, head, d_head]
            for j, i in enumerate(rows):
                last[i] = z[j, -1, head].float().cpu()
            if edit is not None:
                z = z.clone()
                z[chosen, :, head] = edit(z[chosen, :, head]).to(z.dtype)
                return z

        with model.bridge.hooks(fwd_hooks=[(act_name("z", layer), hook)]), \
                (steering.apply(model) if steering is not None else contextlib.nullcontext()):
            logits = model.hf(**batch, logits_to_keep=1).logits[:, -1].float()
        score, logp = model_refusal_score(model, logits).cpu(), torch.log_softmax(logits, -1).cpu()
        for j, i in enumerate(rows):
            scores[i], logps[i] = float(score[j]), logp[j]
    return torch.tensor(scores), torch.stack(logps), torch.stack(last)


@torch.no_grad()
def gate_passes(model, records, gate, batch_size: int = 32) -> torch.Tensor:
    """[n] whether `gate` reads each record's unsteered stream (last prompt token) below its threshold."""
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    passed = torch.zeros(len(prompts), dtype=torch.bool)
    for rows in length_batches(model.tokenizer, prompts, batch_size):
        batch = encode_batch(model.tokenizer, [prompts[i] for i in rows], model.device)
        read = {}
        hooks = [(act_name("resid_post", layer), lambda a, hook, layer=layer: read.__setitem__(layer, a[:, -1]))
                 for layer in gate.read_layers]
        with model.bridge.hooks(fwd_hooks=hooks):
            model.hf(**batch, logits_to_keep=1)
        p_harm = gate.probability(torch.stack([read[layer] for layer in gate.read_layers], 1)).cpu()
        passed[rows] = gate.decide(p_harm)[0]
    return passed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="organism:defended")
    ap.add_argument("--data", default="datasets/toolcalls.jsonl")
    ap.add_argument("--split", default="val")
    ap.add_argument("--layer", type=int, required=True)
    ap.add_argument("--head", type=int, required=True)
    ap.add_argument("--steer", default=None, help="a gated config: also zero the head where its gate passes")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    steering = load_config(args.steer, model=model)[0] if args.steer else None
    benign_train = [r for r in load_records(args.data, split="train") if r.kind == "benign"]
    score, _, z = screen(model, benign_train, args.layer, args.head)
    mean_z = z[score <= 0].mean(0)
    edits = {"zero": lambda z: torch.zeros_like(z), "mean": lambda z: mean_z.to(z.device).expand_as(z)}
    out = {"model": args.model, "split": args.split, "layer": args.layer, "head": args.head, "kinds": {}}
    for kind in ("benign", "lookalike", "harmful", "injection"):
        records = [r for r in load_records(args.data, split=args.split) if r.kind == kind]
        before, logp, _ = screen(model, records, args.layer, args.head)
        refused = before > 0
        out["kinds"][kind] = {"n": len(records), "refusing": int(refused.sum())}
        runs = {name: {"edit": edit} for name, edit in edits.items()}
        if steering is not None:
            runs["zero_where_gate_passes"] = {"edit": edits["zero"],
                                              "where": gate_passes(model, records, steering.gate)}
            runs["config"] = {"steering": steering}
        for name, run in runs.items():
            after, edited, _ = screen(model, records, args.layer, args.head, **run)
            kl = log_kl(logp, edited)
            out["kinds"][kind][name] = {
                "refusing": int((after > 0).sum()),
                "flipped": round(float((after[refused] <= 0).float().mean()), 4) if refused.any() else None,
                "kl_complied": round(float(kl[~refused].mean()), 4) if (~refused).any() else None}
        print(kind, json.dumps(out["kinds"][kind]))
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
