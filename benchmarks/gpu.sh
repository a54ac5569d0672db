#!/usr/bin/env bash
# Both benchmarks on one GPU with a random-weight Llama-3.2-1B-shaped model, then one table.
# Usage: bash benchmarks/gpu.sh [OUT_DIR]
# Expects the venv from `make setup`, or PYTHON=python3 with taxlens's requirements importable (PYTHONPATH=.).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/bench/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
MODELS="$(mktemp -d)"  # the random 1B model, built once (bf16) for both benchmarks
trap 'rm -rf "$MODELS"' EXIT
"$PY" - <<'PY'  # fail here, with the names, rather than inside a measuring process
import importlib.util, sys
needed = ["torch", "transformer_lens", "transformers", "safetensors", "sklearn", "einops", "jsonschema", "jinja2",
          "tqdm", "psutil", "datasets"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (install taxlens's requirements, e.g. `make setup`)")
import torch
assert torch.cuda.is_available(), "no CUDA device"
print(torch.cuda.get_device_name(0))
PY
"$PY" benchmarks/cache.py --models llama-3.2-1b --repeats 3 --models-dir "$MODELS" --json "$OUT/cache.json"
"$PY" benchmarks/steer.py --shape llama-3.2-1b --rounds 3 --models-dir "$MODELS" --json "$OUT/steer.json"
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
cache, steer = (json.load(open(f"{out}/{name}.json")) for name in ("cache", "steer"))
rows = [
    ("cache: time vs bare forward", cache["ratio_vs_bare"], "<= 1.10"),
    ("cache: speed-up vs full run_with_cache", cache["speedup_vs_full_cache"], ">= 2"),
    ("cache: memory ratio vs full cache", cache["memory_ratio_vs_full_cache"], ">= 10"),
    ("cache: streaming peak, 4x prompts vs 1x", cache["streaming_peak_ratio_4x_prompts"], "bounded"),
    ("steer: hook ablation time ratio", steer["hook_ablation_ratio"], "<= 1.10"),
    ("steer: hook ablation, every position", steer["hook_ablation_all_positions_ratio"], "(reported)"),
    ("steer: gated ablation time ratio", steer["gated_ratio"], "<= 1.15"),
    ("steer: orthogonalised time ratio", steer["orthogonalized_ratio"], "<= 1.05"),
    ("steer: plain transformers, no bridge (serve's engine)", steer["plain_transformers_ratio"], "(reported)"),
    ("steer: gated on plain transformers vs plain unsteered", steer["plain_transformers_gated_ratio"], "<= 1.15"),
]
print(f"\n{'figure (llama-3.2-1b shape, ' + steer['device'] + ', ' + steer['dtype'] + ')':58s} {'value':>8s}  bar")
for name, value, bar in rows:
    print(f"{name:58s} {value:8.3f}  {bar}")
PY
echo "benchmarks/gpu.sh: ${SECONDS} s in all (bar: 300 s)"
