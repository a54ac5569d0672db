"""Is one trigger-reading head a property of the recipe or of one adapter? For each pair folder (`base/` and its
`defended/` adapter, as `taxlens organism train` writes them), the probe's head steps on one split's lookalike
records: per-block patching, every head patched alone, and what the head that flips the most reads from the last
prompt token in both models (`probes.patching`, `probes.heads`).

    python benchmarks/head_seeds.py PAIR_DIR [PAIR_DIR ...] --split val --out OUT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from probes.heads import head_reading
from probes.patching import cross_model_patching, head_layers, head_patching
from taxlens.chat import render_prompt
from taxlens.contract import load_records
from taxlens.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", help="folders holding base/ and defended/")
    ap.add_argument("--data", default="datasets/toolcalls.jsonl")
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lookalike = [r for r in load_records(args.data, split=args.split) if r.kind == "lookalike"]
    rows = []
    for pair in args.pairs:
        base = load_model(str(Path(pair) / "base"), device="cpu")
        defended = load_model(str(Path(pair) / "defended"), device="cpu")
        prompts = [render_prompt(defended.tokenizer, r) for r in lookalike]
        blocks = cross_model_patching(base, defended, prompts, progress=False)
        heads = head_patching(base, defended, prompts, head_layers(blocks, defended.bridge.cfg.n_heads),
                              progress=False)
        top = heads["top"][0]
        reading = {role: head_reading(m, lookalike, prompts, top["layer"], top["head"])
                   for role, m in (("defended", defended), ("base", base))}
        row = {"pair": pair, "refused": heads["target_refused"], "top": heads["top"][:3],
               "attn_out_flipped": blocks["sites"]["attn_out"]["flipped"],
               "mlp_out_flipped": blocks["sites"]["mlp_out"]["flipped"],
               "trigger_attention": {role: r["trigger_attention"] for role, r in reading.items()},
               "most_attended": {role: r["most_attended"][:5] for role, r in reading.items()}}
        rows.append(row)
        print(json.dumps(row))
    Path(args.out).write_text(json.dumps({"split": args.split, "pairs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
