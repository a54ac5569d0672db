"""Does a bigger base copy and compose better? Trains the recipe's base (no defended twin) at another shape on the
same training text and steps, so that only capacity differs, and writes the base folder; evaluate it as any model:

    python benchmarks/capacity.py runs/deep6 --layers 6 --seed 20
    taxlens eval --model runs/deep6/base --data datasets/toolcalls.jsonl --split val --out runs/deep6/val.json

The recipe's data are seeded apart from the model, so every shape of one seed reads the same examples in the same
order. On two AVX2 cores (fp32): 48–59 minutes at the shipped 4 layers, 70–72 at 6; on two AMX cores (bf16):
14–18 at the shipped shape, 21 at d_model 384 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write base/ and train_log.jsonl into")
    parser.add_argument("--layers", type=int, default=None, help="n_layers (the recipe's: 4)")
    parser.add_argument("--d-model", type=int, default=None, help="d_model (the recipe's: 256; heads stay 64 wide)")
    parser.add_argument("--d-mlp", type=int, default=None, help="d_mlp (the recipe's: 704)")
    parser.add_argument("--seed", type=int, default=None, help="the recipe's seed (its own: the shipped pair's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from taxlens.organism.train import Recipe, train_organism

    shape = {"n_layers": args.layers, "d_model": args.d_model, "d_mlp": args.d_mlp, "seed": args.seed}
    recipe = replace(Recipe(), **{k: v for k, v in shape.items() if v is not None})
    if recipe.d_model % 64:
        parser.error(f"--d-model {recipe.d_model}: must be a multiple of 64 (the heads are 64 wide)")
    recipe = replace(recipe, n_heads=recipe.d_model // 64)
    start = time.perf_counter()
    paths = train_organism(args.out, recipe=recipe, defended=False, device=args.device)
    minutes = (time.perf_counter() - start) / 60
    print(json.dumps({"base": str(paths["base"]), "minutes": round(minutes, 1),
                      "shape": {k: asdict(recipe)[k] for k in ("n_layers", "d_model", "n_heads", "d_mlp", "seed")}}))


if __name__ == "__main__":
    main()
