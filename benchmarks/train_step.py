"""Time of one organism training step (forward, backward, AdamW) at a few padded widths: eager and sdpa attention,
and eager under `torch.compile(dynamic=True)` (one compile serves every width), in fp32 and with bf16 autocast on
the CPU. Which attention, precision and compiling the recipe should train with depends on the CPU: bf16 pays only
where it has native bf16 kernels (`taxlens.organism.train.native_bf16`); elsewhere a bf16 step takes about a
minute, so bf16 is measured there only when asked for.

    python benchmarks/train_step.py --json runs/bench/train_step.json [--precisions fp32,bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from taxlens.organism.train import Recipe, llama_config, native_bf16


def step_seconds(attention: str, width: int, batch: int, repeats: int, compiled: bool, bf16: bool) -> float:
    recipe = Recipe()
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(recipe, recipe.vocab_size, attn_implementation=attention))
    forward = torch.compile(model, dynamic=True) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, recipe.vocab_size, (batch, width))
    mask = torch.ones_like(ids)
    mask[: batch // 4, : width // 5] = 0  # some left padding, as in the recipe's batches
    labels = ids.masked_fill(torch.arange(width) < width - 36, -100)  # loss on the last 36 tokens: the reply
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])  # the first two build kernels (or compile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    parser.add_argument("--widths", default="64,112,176,240")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default=None,
                        help="fp32,bf16 (default: bf16 too only where the CPU has native bf16 kernels)")
    args = parser.parse_args()
    native = native_bf16()
    precisions = (args.precisions or ("fp32,bf16" if native else "fp32")).split(",")
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, native bf16: {native}, {torch.get_num_threads()} threads")
    rows = []
    for width in map(int, args.widths.split(",")):
        for precision in precisions:
            bf16 = precision == "bf16"
            row = {"width": width, "precision": precision,
                   **{a: round(step_seconds(a, width, args.batch, args.repeats, False, bf16), 3)
                      for a in ("sdpa", "eager")},
                   "eager_compiled": round(step_seconds("eager", width, args.batch, args.repeats, True, bf16), 3)}
            rows.append(row)
            print(f"width {width:4d} {precision}: sdpa {row['sdpa']:.3f} s  eager {row['eager']:.3f} s  compiled "
                  f"eager {row['eager_compiled']:.3f} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"batch": args.batch, "threads": torch.get_num_threads(),
                                               "cpu": torch.backends.cpu.get_cpu_capability(), "native_bf16": native,
                                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
