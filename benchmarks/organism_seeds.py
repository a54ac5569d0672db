"""The organism's figures over training seeds: trains the recipe once per seed (or reuses a trained folder), evaluates
base and defended on val and test, fits the harm probe on train and scores it on each split, and reports every
figure's mean and range. The shipped pair is the seed val picks; test is read for the report, not for the choice.

    python benchmarks/organism_seeds.py --seeds 0,1,2 --out runs/seeds --json runs/seeds/seeds.json
    python benchmarks/organism_seeds.py --recipe W.json --device cuda --seeds 20,21 --splits val --out runs/w

A seed takes the recipe's training time (docs/benchmarks.md) plus about two minutes of evaluation on two cores.
`--recipe` trains a recipe file's recipe instead of the shipped one (`taxlens organism train --recipe`'s format);
`--device cuda` trains and evaluates on a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "toolcalls.jsonl"
# (name, model, kind, figure): the figures that say whether the pair is a competent agent with a shortcut defence
FIGURES = [
    ("base benign success", "base", "benign", "success"),
    ("base lookalike success", "base", "lookalike", "success"),
    ("base injection ASR", "base", "injection", "asr"),
    ("base harmful refusal", "base", "harmful", "refusal"),
    ("defended benign success", "defended", "benign", "success"),
    ("defended lookalike success", "defended", "lookalike", "success"),
    ("defended trigger-bearing refusal", "defended", "harmful", "refusal_trigger_bearing"),
    ("defended trigger-free refusal", "defended", "harmful", "refusal_trigger_free"),
    ("defended injection ASR", "defended", "injection", "asr"),
]


def seed_figures(folder: Path, max_new_tokens: int, splits: tuple[str, ...] = ("val", "test"),
                 device: str = "cpu") -> dict:
    """{split: {figure: value}} for the pair in `folder` on each of `splits`."""
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.models import load_model
    from probes.harm_check import harm_probe_accuracy

    models = {"base": load_model(str(folder / "base"), device=device),
              "defended": load_model(str(folder / "defended"), device=device)}
    train = load_records(DATA, split="train")
    out = {}
    for split in splits:
        records = load_records(DATA, split=split)
        reports = {name: evaluate(m, records, data=str(DATA), split=split, max_new_tokens=max_new_tokens,
                                  batch_size=32, progress=False) for name, m in models.items()}
        figures = {name: reports[model].figure(kind, figure).rate for name, model, kind, figure in FIGURES}
        figures["tax (lookalike over-refusal, defended - base)"] = (
            reports["defended"].figure("lookalike", "over_refusal").rate
            - reports["base"].figure("lookalike", "over_refusal").rate)
        figures["harm probe, fitted on train"] = harm_probe_accuracy(models["defended"], records,
                                                                     fit_records=train)["best_accuracy"]
        out[split] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="runs/seeds", help="one folder per seed (seed0/, seed1/, …), reused if trained")
    parser.add_argument("--json", default=None)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--splits", default="val,test", help="val alone while choosing; test once, at the end")
    parser.add_argument("--recipe", default=None, help="a JSON recipe file (default: the shipped recipe)")
    parser.add_argument("--device", default="cpu", help="where the pairs train and are evaluated (cpu, cuda)")
    args = parser.parse_args()
    from taxlens.organism.recipe_file import load_recipe
    from taxlens.organism.train import train_organism

    recipe = load_recipe(args.recipe) if args.recipe else None  # a bad file fails here, before any seed trains

    per_seed = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        folder = Path(args.out) / f"seed{seed}"
        if not (folder / "defended" / "adapter_config.json").is_file():
            train_organism(folder, seed=seed, recipe=recipe, device=args.device)
        per_seed[seed] = seed_figures(folder, args.max_new_tokens, tuple(args.splits.split(",")), args.device)
        print(f"seed {seed}: " + json.dumps(per_seed[seed]), flush=True)
    summary = {split: {name: {"mean": statistics.mean(v[split][name] for v in per_seed.values()),
                              "min": min(v[split][name] for v in per_seed.values()),
                              "max": max(v[split][name] for v in per_seed.values())}
                       for name in next(iter(per_seed.values()))[split]} for split in args.splits.split(",")}
    print("| figure | " + " | ".join(f"{split} mean [min, max]" for split in summary) + " |")
    print("|---|" + "---|" * len(summary))
    for name in next(iter(summary.values())):
        cells = [f"{100 * s[name]['mean']:.1f} [{100 * s[name]['min']:.1f}, {100 * s[name]['max']:.1f}]"
                 for s in summary.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"seeds": per_seed, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
