"""Generation throughput under steering: the unsteered model, hook ablation (every residual write; over the prompt's
positions, the default, and over every position, reply tokens too), gated ablation (a harmfulness gate deciding per
row) and the orthogonalised checkpoint, greedy, 64 new tokens, batch 1 and 8; and, for what TransformerLens's
bridge costs by wrapping every module, the same checkpoint loaded by plain `transformers`, unsteered and gated.

Rounds are interleaved (each round runs every variant once) and medians taken, so drift hits all variants alike.
The direction and gate are random (speed doesn't depend on their values; the gate reads the stream after every
block up to the middle one, as the shipped organism's reads blocks 0–3); the orthogonalised checkpoint is written
by `steering.export` from the same direction and booted through the bridge like the original. Runs unchanged on
CUDA.

    python benchmarks/steer.py --json runs/bench/steer.json                 # the organism
    python benchmarks/steer.py --shape llama-3.2-1b --json OUT.json          # a random model of that shape
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from random_llama import SHAPES, build_random_llama  # a sibling script

ROOT = Path(__file__).resolve().parents[1]
NEW_TOKENS = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    parser.add_argument("--shape", default=None, help=f"a random-weight model of one of {list(SHAPES)} "
                                                      "(default: the organism)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--models-dir", default=None, help="where the random-weight model is built or reused "
                                                             "(default: a temporary folder)")
    args = parser.parse_args()

    import torch

    from steering.config import save_config
    from steering.export import export_orthogonalized
    from steering.gate import HarmGate
    from steering.hooks import Steering
    from taxlens.chat import render_prompt
    from taxlens.contract import load_records
    from taxlens.generation import encode_batch
    from taxlens.models import load_model, load_serving_model

    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(args.models_dir or tmp)
        spec = "organism:defended" if args.shape is None else build_random_llama(models_dir / args.shape, args.shape)
        model = load_model(spec)
        torch.manual_seed(0)
        direction = torch.randn(model.d_model)
        config = save_config(Steering(direction), Path(tmp) / "steer", method="global", model=spec, settings={})
        ortho = load_model(str(export_orthogonalized(spec, config, Path(tmp) / "ortho",
                                                     dtype=str(model.bridge.cfg.dtype).removeprefix("torch."))))
        gate_layer = model.n_layers // 2  # a gate of the shipped kind: it reads every block's stream up to its own
        gate = HarmGate(torch.randn(gate_layer + 1, model.d_model) / model.d_model ** 0.5, 0.0, layer=gate_layer,
                        read_layers=tuple(range(gate_layer + 1)))
        # the same checkpoint loaded by plain transformers: what the bridge's wrapping of every module costs
        plain = load_serving_model(spec, device=str(model.device), dtype=model.bridge.cfg.dtype)
        variants = {  # name: (the model that generates, steering)
            "unsteered": (model, None),
            "hook_ablation": (model, Steering(direction)),  # the prompt's positions (the default)
            "hook_ablation_all_positions": (model, Steering(direction, positions="all")),  # reply tokens too
            "gated_ablation": (model, Steering(direction, gate=gate)),
            "orthogonalized": (ortho, None),
            "plain_transformers_unsteered": (plain, None),
            "plain_transformers_gated": (plain, Steering(direction, gate=gate)),
        }
        records = load_records(ROOT / "datasets" / "toolcalls.jsonl", split="test")
        prompts = [render_prompt(model.tokenizer, r) for r in records[::40]]
        results = {"model": args.shape or spec, "device": str(model.device), "dtype": str(model.bridge.cfg.dtype),
                   "new_tokens": NEW_TOKENS, "batches": {}}
        for batch_size in map(int, args.batch_sizes.split(",")):
            batch = encode_batch(model.tokenizer, prompts[:batch_size], model.device)

            def generate(m, steering):
                with torch.no_grad(), steering.apply(m) if steering else nullcontext():
                    if str(model.device).startswith("cuda"):
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    m.hf.generate(**batch, do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                  pad_token_id=model.tokenizer.pad_token_id)
                    if str(model.device).startswith("cuda"):
                        torch.cuda.synchronize()
                    return time.perf_counter() - start

            for variant in variants.values():  # warm-up
                generate(*variant)
            times = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, variant in variants.items():
                    times[name].append(generate(*variant))
            median = {name: statistics.median(t) for name, t in times.items()}
            results["batches"][str(batch_size)] = {
                name: {"seconds": round(median[name], 4),
                       "tokens_per_s": round(batch_size * NEW_TOKENS / median[name], 1),
                       "ratio": round(median[name] / median["unsteered"], 3)} for name in variants}
            print(f"batch {batch_size}: " + "  ".join(f"{n}: {v['tokens_per_s']} tok/s ({v['ratio']}×)"
                                                     for n, v in results["batches"][str(batch_size)].items()))
    for key, name in (("hook_ablation_ratio", "hook_ablation"), ("hook_ablation_all_positions_ratio",
                      "hook_ablation_all_positions"), ("gated_ratio", "gated_ablation"),
                      ("orthogonalized_ratio", "orthogonalized"),
                      ("plain_transformers_ratio", "plain_transformers_unsteered")):
        results[key] = max(b[name]["ratio"] for b in results["batches"].values())  # the worse batch size
    # gated steering as `taxlens serve` runs it: relative to the same plain-transformers model unsteered
    results["plain_transformers_gated_ratio"] = round(max(
        b["plain_transformers_gated"]["seconds"] / b["plain_transformers_unsteered"]["seconds"]
        for b in results["batches"].values()), 3)
    print(json.dumps({k: v for k, v in results.items() if k.endswith("_ratio")}))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
