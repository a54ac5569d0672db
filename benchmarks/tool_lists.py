"""Does an agent that has seen tool lists of many shapes keep to the tools it is offered? Every chat the organism
trains on offers its domain's whole tool set, so the list never tells one call from another; val's agent scenes
offer two or three tools, and the base still calls tools absent from them (`move_file` to clear files out of a
folder when only `read_file`, `delete_file` and `list_dir` are offered). Continue a base folder for STEPS steps at
LR over one set of examples (half steps of lookup practice and fresh train-split agent tasks, half the recipe's
last-pass mix, so the pass wears off nothing else), either with the tools as the generator offers them (`--lists
as-generated`, the control) or with each chat's list redrawn (`--lists varied`): every tool the chat or its task
calls, each other tool of its domain at even odds, at odds of one in four one tool of another domain, in a random
order (`organism.corpus.draw_tool_list`, which `Recipe.tool_lists` applies to every chat from scratch). Then run the
base as an agent on val scenes (`taxlens agent run --model OUT --split val`): recipe run 35, docs/results.md.

    python benchmarks/tool_lists.py BASE OUT --lists varied --steps 150
"""

from __future__ import annotations

import dataclasses
import json
import random

from taxlens.datagen.agent_tasks import generate_tasks
from taxlens.organism.corpus import Example, draw_tool_list, last_pass_mix, trajectory_examples, vary_tool_lists
from taxlens.organism.lookups import lookup_tasks
from taxlens.organism.train import continuation_parser, continue_base
from taxlens.tools import DOMAIN_TOOLS

def practice_set(steps: int, lists: str, seed: int) -> list[Example]:
    """steps × 32 examples: half agent steps (lookup practice with lists of 1–3 targets, and fresh train-split
    agent tasks), half the last pass's mix; with `lists` "varied", each task's and each chat's offered tools
    redrawn by `draw_tool_list` (a task's once, for all its steps)."""
    n = steps * 32
    rng, tool_rng = random.Random(seed), random.Random(seed + 2)
    agent: list[Example] = []
    while len(agent) < n // 2:
        tasks = lookup_tasks(rng, 50, max_items=3) + generate_tasks(rng.randrange(10**6), split="train",
                                                                     per_phrasing=1)
        if lists == "varied":
            tasks = [dataclasses.replace(t, tools=draw_tool_list(
                {c["name"] for c in t.solution + t.attack}, DOMAIN_TOOLS[t.domain], tool_rng)) for t in tasks]
        agent += trajectory_examples("base", tasks)
    mix = last_pass_mix(n - n // 2, seed + 1)
    if lists == "varied":
        mix = vary_tool_lists(mix, tool_rng)
    examples = agent[:n // 2] + mix
    rng.shuffle(examples)
    return examples


def main() -> None:
    parser = continuation_parser(__doc__)
    parser.add_argument("--lists", choices=("as-generated", "varied"), required=True)
    args = parser.parse_args()
    examples = practice_set(args.steps, args.lists, seed=args.seed)
    shapes = {json.dumps(sorted(e.tools)) for e in examples if e.messages is not None}
    print(f"{len(examples)} examples, {len(shapes)} distinct tool lists")
    print(continue_base(args.base, args.out, examples, lr=args.lr, seed=args.seed, desc=f"tool lists {args.lists}"))


if __name__ == "__main__":
    main()
