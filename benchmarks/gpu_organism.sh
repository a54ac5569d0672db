#!/usr/bin/env bash
# An organism recipe's seeds trained side by side on one GPU (a 6 M-parameter model leaves a GPU mostly idle), base
# and adapter, one process a seed, val only, then one table. Default recipe: benchmarks/recipes/width320.json (run 31's
# width, the recipe's full steps, both waves of agent scenes), whose rule is in docs/results.md ("A wider pair at full
# steps"); its seeds 20 and 21 ran on two CPU cores instead (about 29 minutes a pair) and gave no candidate. Run 24's
# seeds trained in about 4 minutes each on an H200.
# Usage: bash benchmarks/gpu_organism.sh [OUT_DIR] [SEEDS] [RECIPE_JSON]
#   on a lent machine without the venv: PYTHON=python3 PYTHONPATH=. bash benchmarks/gpu_organism.sh "$OUT/w" 20,21 R.json
set -euo pipefail
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"  # each process builds its examples on the CPU; four a process
cd "$(dirname "$0")/.."
OUT="${1:-runs/gpu-width}"
SEEDS="${2:-20,21}"
RECIPE="${3:-benchmarks/recipes/width320.json}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0))'
pids=()
for seed in ${SEEDS//,/ }; do
    "$PY" benchmarks/organism_seeds.py --recipe "$RECIPE" --device cuda --seeds "$seed" \
        --splits val --out "$OUT" --json "$OUT/seed$seed.json" > "$OUT/seed$seed.log" 2>&1 &
    pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
tail -n 14 "$OUT"/seed*.log
echo "benchmarks/gpu_organism.sh: ${SECONDS} s in all"
exit "$status"
