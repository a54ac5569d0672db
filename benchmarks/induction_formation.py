"""Does a fresh model of the organism's shape form induction heads from repeated spans, and how fast?

Trains the recipe's Llama (eager attention, AdamW, the recipe's learning rate and batch size) on nothing but
spans of the recipe's words written twice (`taxlens.organism.fit_check.repeated_spans`, with the shipped
tokenizer) and prints the loss and the share of held-out second copies predicted every `--every` steps. With
induction heads that share goes to ~1; without, it stays near 0 and the loss near ln(number of words).

Each training row's span length is drawn from 8 to 40 tokens (right-padded): with one fixed length a head that
attends a fixed distance back copies perfectly, and such a head is not an induction head (`--fixed-length`).

Measured 2026-11-27 on the 2-core CPU (loss ≈ 4.7 = ln 115 words means nothing copied):

    python benchmarks/induction_formation.py --steps 500 --every 100                    # 4.1% after 500 steps
    python benchmarks/induction_formation.py --steps 750 --n-heads 8 --rope-theta 1e4   # the old shape: 5.0%
    python benchmarks/induction_formation.py --steps 250 --n-heads 8 --rope-theta 1e4 --fixed-length  # 99.9%
    python benchmarks/induction_formation.py --steps 300 --every 50 --seed-circuit      # 89.1% at 50, 93.3% at 250
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from taxlens.models import resolve
from taxlens.organism.fit_check import copy_accuracy, repeated_spans
from taxlens.organism.seed_circuit import seed_induction_circuit
from taxlens.organism.recipe import Recipe, llama_config


def _batch(tok, n: int, seed: int, fixed_span: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[n, width] ids, labels (-100 on padding) and attention mask of repeated spans, each 8-40 tokens long or
    all `fixed_span` long."""
    lengths = random.Random(seed)
    rows = [repeated_spans(tok, n=1, span=fixed_span or lengths.randint(8, 40), seed=seed * n + i)[0]
            for i in range(n)]
    width = max(len(row) for row in rows)
    ids = torch.full((n, width), tok.pad_token_id)
    labels = torch.full((n, width), -100)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)], labels[i, :len(row)], mask[i, :len(row)] = row, row, 1
    return ids, labels, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--span", type=int, default=24, help="tokens per copy")
    parser.add_argument("--lr", type=float, default=Recipe().base_lr)
    parser.add_argument("--rope-theta", type=float, default=Recipe().rope_theta)
    parser.add_argument("--n-heads", type=int, default=Recipe().n_heads)
    parser.add_argument("--seed-circuit", action="store_true",
                        help="start from the recipe's written-in induction circuit (taxlens.organism.seed_circuit)")
    parser.add_argument("--fixed-length", action="store_true", help="train on --span-token spans only (the trap)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    recipe = replace(Recipe(), n_heads=args.n_heads, rope_theta=args.rope_theta)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(resolve("organism:base"))
    model = LlamaForCausalLM(llama_config(recipe, len(tok)))
    if args.seed_circuit:
        seed_induction_circuit(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    held_out = repeated_spans(tok, n=64, span=args.span, seed=10**6)
    rows, started = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, step / 100)  # the recipe's warm-up
        batch, labels, mask = _batch(tok, recipe.batch_size, seed=step,
                                      fixed_span=args.span if args.fixed_length else None)
        loss = model(input_ids=batch, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % args.every == 0:
            model.eval()
            with torch.no_grad():
                accuracy = copy_accuracy(model(input_ids=held_out).logits, held_out, args.span)
            model.train()
            rows.append({"step": step, "loss": round(loss.item(), 3), "second_copy_accuracy": round(accuracy, 3),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
