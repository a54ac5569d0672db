"""Wall time and peak memory of `taxlens agent run` on a split of the agent tasks, all kinds, for each model given
(the bar: the organism, test split, all kinds, ≤ 5 min on 2 cores), and the same harness with the scripted reference
agent (sandboxes alone: files, SQLite, HTTP and SMTP set up and torn down per task, no model).

    python benchmarks/agent_run.py --split test --json runs/bench/agent_run.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from taxlens.agent import ModelPolicy, ScriptedPolicy, load_tasks, run_tasks
from taxlens.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=str(ROOT / "datasets" / "agent_tasks.jsonl"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", nargs="+", default=["organism:base", "organism:defended"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    tasks = load_tasks(args.tasks, split=args.split)
    rows = []
    for name in ["scripted:solution", *args.models]:
        started = time.perf_counter()
        policy = ScriptedPolicy("solution") if name.startswith("scripted") else ModelPolicy(load_model(name))
        trajectories = run_tasks(policy, tasks)
        seconds = time.perf_counter() - started
        steps = sum(len(t.steps) for t in trajectories)
        rows.append({"model": name, "tasks": len(tasks), "steps": steps, "seconds": round(seconds, 1),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
        print(f"{name}: {len(tasks)} tasks, {steps} steps in {seconds:.1f} s (load included); "
              f"peak RSS so far {rows[-1]['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"split": args.split, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
