"""Seconds per organism training step on the recipe's own batches, with the loss taken as HF's causal LM computes it
(logits at every position) and with the unembedding applied only where the next token is labelled (`labelled_loss`
below: the reply, about a third of a base pass's tokens and a quarter of the defended set's). Both compiled, with
bf16 autocast where the CPU computes bf16 natively, from the same initial weights over the same batches, taking
turns on each batch; their losses on the first batch must agree.

    python benchmarks/loss_speed.py --steps 150 --d-model 320 --n-heads 5 --d-mlp 880 [--set defended] \
        --json runs/bench/loss_speed.json
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from taxlens.organism.train import Recipe, _batches, base_passes, defended_set, encode_all, llama_config, trainable_here

TOKENIZER = "taxlens/organism/checkpoints/base"


def labelled_loss(model, ids, mask, labels, positions):
    """HF's causal LM loss with the logits made at `positions` only (flat indices into [batch, seq - 1] whose next
    token is labelled). ids, mask, labels: [batch, seq]; positions: [n_labelled]."""
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]  # [batch, seq - 1, d_model]
    hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
    target = labels[:, 1:].reshape(-1).index_select(0, positions)
    return torch.nn.functional.cross_entropy(model.lm_head(hidden).float(), target)


def labelled_positions(labels: torch.Tensor) -> torch.Tensor:
    return (labels[:, 1:].reshape(-1) != -100).nonzero().squeeze(1)


def _stepper(recipe: Recipe, vocab: int, mode: str):
    """A function that takes one training step on a batch and returns (its seconds, its loss)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(recipe, vocab))
    if mode == "hf":
        def loss_of(ids, mask, labels, _positions):
            return model(input_ids=ids, attention_mask=mask, labels=labels).loss
    else:
        loss_of = functools.partial(labelled_loss, model)
    forward = torch.compile(loss_of, dynamic=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, betas=(0.9, 0.98))

    def step(ids, labels, mask) -> tuple[float, float]:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
            loss = forward(ids, mask, labels, labelled_positions(labels))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start, loss.item()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--d-mlp", type=int, default=704)
    parser.add_argument("--set", choices=("base", "defended"), default="base")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    recipe = trainable_here(replace(Recipe(), d_model=args.d_model, n_heads=args.n_heads, d_mlp=args.d_mlp,
                                    base_epochs=1.0))
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    examples = base_passes(recipe) if args.set == "base" else defended_set(recipe)
    encoded = encode_all(tokenizer, examples, recipe.n_ctx)
    batches = [b for _, b in zip(range(args.steps), _batches(encoded, recipe.batch_size, random.Random(0),
                                                             tokenizer.pad_token_id))]
    row = {"set": args.set, "steps": len(batches), "shape": [args.d_model, args.n_heads, args.d_mlp],
           "bf16": recipe.bf16, "threads": torch.get_num_threads()}
    # the two take turns on each batch, so a machine whose speed drifts (shared cores) slows both alike
    steppers = {mode: _stepper(recipe, len(tokenizer), mode) for mode in ("hf", "labelled")}
    runs = {mode: [] for mode in steppers}
    for ids, labels, mask in batches:
        for mode, step in steppers.items():
            runs[mode].append(step(ids, labels, mask))
    for mode, rows in runs.items():
        times = [t for t, _ in rows[3:]]  # the first three compile
        row[f"{mode}_mean_s"], row[f"{mode}_median_s"] = statistics.mean(times), statistics.median(times)
        row[f"{mode}_losses"] = [loss for _, loss in rows]
        print(f"{mode:9s} {row[f'{mode}_mean_s']:.3f} s a step (mean), {row[f'{mode}_median_s']:.3f} (median)",
              flush=True)
    ratios = [a[0] / b[0] for a, b in zip(runs["hf"][3:], runs["labelled"][3:])]
    gap = abs(row["hf_losses"][0] - row["labelled_losses"][0])  # same weights, same batch: only rounding differs
    row["speedup_mean"] = row["hf_mean_s"] / row["labelled_mean_s"]
    row["speedup_median_ratio"], row["first_loss_gap"] = statistics.median(ratios), gap
    print(f"speed-up: {row['speedup_mean']:.3f}x by mean step time, {row['speedup_median_ratio']:.3f}x by the median "
          f"over batches of hf / labelled; the two losses on the first batch differ by {gap:.4f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
