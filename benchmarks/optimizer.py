"""Does Muon train the organism's base further than AdamW in the same steps? Trains the recipe's base twice from
one initialisation on one build of its main pass, the batches in the same order, differing only in the optimiser
(`Recipe.base_optimizer`; or, with `--lr`, an arm at another learning rate beside an earlier call's), over a shortened schedule (`--epochs` of one build, warm-up and cosine decay to zero),
then reads each on val's benign and lookalike records with the expected call teacher-forced: the mean loss over
the call's tokens and how many calls every token of which is the model's argmax. Writes both base folders, so each
can be evaluated as any model:

    python benchmarks/optimizer.py runs/optim --seed 22 --epochs 0.75
    python benchmarks/optimizer.py runs/optim --seed 22 --epochs 0.75 --optimizers adamw --lr 4e-3   # adamw-lr0.004
    taxlens eval --model runs/optim/muon/base --data datasets/toolcalls.jsonl --split val --out runs/optim/muon.json

Two AVX2 cores (fp32): about 2 s a step (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch


def teacher_forced(model, tokenizer, records) -> dict:
    """Mean loss over the expected calls' tokens (and the end of turn) and the count of calls the model's argmax
    writes exactly, each call after its record's rendered prompt."""
    from taxlens.organism.corpus import call_text
    from taxlens.tools import schemas_for

    total, tokens, exact = 0.0, 0, 0
    model.eval()
    for r in records:
        prompt = tokenizer.apply_chat_template(r.messages, tools=schemas_for(r.tools), add_generation_prompt=True,
                                               tokenize=False)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(call_text(r.expected), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        with torch.no_grad():
            logits = model(torch.tensor([p + t])).logits[0, len(p) - 1: len(p) + len(t) - 1].float()
        target = torch.tensor(t)
        total += torch.nn.functional.cross_entropy(logits, target, reduction="sum").item()
        tokens += len(t)
        exact += int(bool((logits.argmax(-1) == target).all()))
    return {"loss": round(total / tokens, 4), "exact": exact, "records": len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write adamw/base, muon/base and results.json into")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--epochs", type=float, default=0.75, help="of one build of the main pass")
    parser.add_argument("--optimizers", default="adamw,muon")
    parser.add_argument("--lr", type=float, default=None,
                        help="the arms' learning rate (the recipe's base_lr if not given; an arm at another is named "
                             "OPTIMIZER-lrLR)")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    args = parser.parse_args()

    from taxlens.contract import load_records
    from taxlens.organism.seed_circuit import tie_copy_readout
    from taxlens.organism.train import Recipe, _save, _untrained_model, base_passes, fit, trainable_here

    recipe = trainable_here(replace(Recipe(), seed=args.seed, base_epochs=1.0))
    torch.manual_seed(recipe.seed)
    examples = base_passes(recipe)
    model0, tokenizer = _untrained_model(recipe, examples)
    records = [r for r in load_records(args.data, split="val") if r.kind in ("benign", "lookalike")]
    out = Path(args.out)
    earlier = out / "results.json"  # arms trained by an earlier call of the same seed and schedule stay
    results = json.loads(earlier.read_text()) if earlier.is_file() else {}
    if (results.get("seed"), results.get("epochs")) != (args.seed, args.epochs):
        results = {"seed": args.seed, "epochs": args.epochs, "arms": {}}
    results["examples"] = len(examples)
    lr = recipe.base_lr if args.lr is None else args.lr
    for optimizer in args.optimizers.split(","):
        name = optimizer if lr == recipe.base_lr else f"{optimizer}-lr{lr:g}"
        model, rows = copy.deepcopy(model0), []
        arm = replace(recipe, base_optimizer=optimizer, base_lr=lr)
        start = time.perf_counter()
        fit(model, tokenizer, examples, epochs=args.epochs, lr=arm.base_lr, recipe=arm, log=rows.append,
            desc=name, after_step=tie_copy_readout, optimizer=optimizer)
        seconds = time.perf_counter() - start
        last = [r["loss"] for r in rows[-50:]]
        results["arms"][name] = {"lr": lr, "steps": len(rows), "seconds": round(seconds, 1),
                                 "train_loss_last50": round(sum(last) / len(last), 4),
                                 "val_teacher_forced": teacher_forced(model, tokenizer, records)}
        _save(model, tokenizer, out / name / "base", arm, "base", "cpu")
        (out / name / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(json.dumps({name: results["arms"][name]}), flush=True)
        earlier.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
