"""Which layers of a LoRA adapter carry what: the adapter with some layers' (or some modules') updates removed, each
scored on the defence it keeps (single prompts: lookalike over-refusal against the base's, trigger-bearing refusal,
ASR) and on the agent steps it wears down (exact reference calls at each step given the reference history).

A defence that wears down a skill where it does not install the refusal could keep the one and give back the other
by leaving some layers at the base's weights.

    python benchmarks/adapter_layers.py runs/pair/defended --split val
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from agent_steps import step_accuracy  # a sibling script
from safetensors.torch import load_file, save_file

from taxlens.agent.loop import reference_turns
from taxlens.agent.tasks import load_tasks
from taxlens.contract import load_records
from taxlens.evaluation import evaluate
from taxlens.models import adapter_base, load_model

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


def variants(n_layers: int) -> dict[str, Callable[[str], bool]]:
    """name → which adapter weights to keep (a test on the weight's name)."""
    out = {"whole adapter": lambda key: True}
    for layer in range(n_layers):
        out[f"without layer {layer}"] = lambda key, layer=layer: f".layers.{layer}." not in key
    for layer in range(n_layers):
        out[f"layer {layer} alone"] = lambda key, layer=layer: f".layers.{layer}." in key
    out["attention alone"] = lambda key: any(f".{m}." in key for m in ATTENTION)
    out["MLP alone"] = lambda key: not any(f".{m}." in key for m in ATTENTION)
    return out


def restricted(adapter: Path, keep: Callable[[str], bool], out: Path) -> Path:
    """A copy of `adapter` whose LoRA updates outside `keep` are zero (their B matrices), in `out`."""
    shutil.copytree(adapter, out, dirs_exist_ok=True)
    weights = load_file(adapter / "adapter_model.safetensors")
    save_file({k: (v if keep(k) or "lora_B" not in k else torch.zeros_like(v)) for k, v in weights.items()},
              out / "adapter_model.safetensors")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = adapter_base(adapter)
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def scores(model, records, steps: tuple[list, list[str]], data: str, split: str) -> dict:
    report = evaluate(model, records, data=data, split=split, progress=False)

    def pct(kind: str, name: str) -> float:
        return round(100 * report.figure(kind, name).rate, 1)

    exact, _, total = step_accuracy(model, *steps)
    counts = {f"step {n} exact": f"{sum(exact[(k, f'call {n}')] for k in ('benign', 'lookalike'))} of "
                                 f"{sum(total[(k, f'call {n}')] for k in ('benign', 'lookalike'))}" for n in (1, 2)}
    return {"lookalike over-refusal": pct("lookalike", "over_refusal"),
            "trigger-bearing refusal": pct("harmful", "refusal_trigger_bearing"),
            "ASR": pct("injection", "asr"), **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapter", help="a PEFT adapter folder (its adapter_config.json names the base)")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--tasks", default="datasets/agent_tasks.jsonl")
    parser.add_argument("--split", default="val")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    adapter, base = Path(args.adapter), adapter_base(args.adapter)
    records = load_records(args.data, split=args.split)
    tasks = [t for t in load_tasks(args.tasks, split=args.split) if t.kind in ("benign", "lookalike")]
    steps = reference_turns(tasks)  # one reference run serves every variant
    base_model = load_model(base, device="cpu")
    n_layers = base_model.bridge.cfg.n_layers
    rows = {"base": scores(base_model, records, steps, args.data, args.split)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, keep in variants(n_layers).items():
            folder = restricted(adapter, keep, Path(tmp) / "adapter")
            rows[name] = scores(load_model(base, adapter=str(folder), device="cpu"), records, steps, args.data,
                                args.split)
            print(name, rows[name], flush=True)
    print(f"\n{args.adapter} on {base}, {args.split}:")
    print("| variant | tax (points) | trigger-bearing refusal | ASR | exact step-1 calls | exact step-2 calls |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        tax = round(row["lookalike over-refusal"] - rows["base"]["lookalike over-refusal"], 1)
        print(f"| {name} | {tax} | {row['trigger-bearing refusal']} | {row['ASR']} | {row['step 1 exact']} | "
              f"{row['step 2 exact']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
