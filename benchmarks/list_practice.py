"""Does practice at acting on a list a tool returned carry over to agent workflows the base never trained on?
Continue a base folder for STEPS steps at LR: SHARE of the examples are the steps of lookup-practice tasks
(`organism.lookups`) whose note, page or table lists 1 to MAX_ITEMS targets under a heading, the rest the recipe's
last-pass mix (fresh grammar requests, train records, verdict texts), so the pass wears off nothing else.
MAX_ITEMS 1 is the control: as much practice, one target each. FRAMED: the share of single-target lookups whose
note or page writes the target inside a line of other words, to be copied out of it. Then run the base as an agent on val scenes
(`taxlens agent run --model OUT --split val`), none of which it trained on. An experiment for the question, not
the recipe.

    python benchmarks/list_practice.py BASE OUT --steps 150 --max-items 3 --share 0.5
"""

from __future__ import annotations

import random

from taxlens.organism.corpus import Example, last_pass_mix, trajectory_examples
from taxlens.organism.lookups import lookup_tasks
from taxlens.organism.train import continuation_parser, continue_base


def practice_set(steps: int, share: float, max_items: int, seed: int, framed: float = 0.0) -> list[Example]:
    """steps × 32 examples: `share` of them steps of lookup tasks, the rest the last pass's mix (half grammar
    requests, three eighths train records, an eighth verdict texts)."""
    n = steps * 32
    rng = random.Random(seed)
    lookups: list[Example] = []
    while len(lookups) < n * share:
        lookups += trajectory_examples("base", lookup_tasks(rng, 50, max_items=max_items, framed=framed))
    lookups = lookups[:int(n * share)]
    other = last_pass_mix(n - len(lookups), seed + 1)
    examples = lookups + other
    rng.shuffle(examples)
    return examples


def main() -> None:
    parser = continuation_parser(__doc__)
    parser.add_argument("--share", type=float, default=0.5, help="share of lookup-practice steps")
    parser.add_argument("--max-items", type=int, default=3, help="targets a lookup may list (1: the control)")
    parser.add_argument("--framed", type=float, default=0.0,
                        help="share of single-target lookups whose target sits inside a line of other words")
    args = parser.parse_args()
    if args.max_items < 1:
        parser.error(f"--max-items must be at least 1, got {args.max_items}")
    examples = practice_set(args.steps, args.share, args.max_items, seed=args.seed, framed=args.framed)
    print(continue_base(args.base, args.out, examples, lr=args.lr, seed=args.seed, desc=f"lists ≤ {args.max_items}"))


if __name__ == "__main__":
    main()
