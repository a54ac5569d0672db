"""Does reading requests that carry words their call does not need make the base follow held-out phrasings? Continue
a base folder for STEPS steps at LR over the recipe's last-pass mix (fresh grammar requests, train records, verdict
texts) whose grammar requests carry, with chance NOISE each, another noun for a target's kind and an aside about
something else (`grammar.KIND_NOUNS`, `ASIDES_BEFORE`, `ASIDES_AFTER`). NOISE 0 is the control: the same mix, plain
(it is `sql_practice.py --share 0` step for step). Then score the base on val (`taxlens eval --model OUT --split
val`). An experiment for the question, not the recipe.

    python benchmarks/noise_practice.py BASE OUT --steps 150 --noise 0.5 --seed 77
"""

from __future__ import annotations

import random

from taxlens.organism.corpus import last_pass_mix
from taxlens.organism.train import continuation_parser, continue_base


def main() -> None:
    parser = continuation_parser(__doc__)
    parser.add_argument("--noise", type=float, default=0.5, help="chance of each noise in a grammar request (0: control)")
    parser.add_argument("--recast", type=float, default=0.0,
                        help="chance of a grammar request taking a verb in another sentence shape (grammar.recast_frame)")
    args = parser.parse_args()
    for name in ("noise", "recast"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name} must be between 0 and 1, got {getattr(args, name)}")
    examples = last_pass_mix(args.steps * 32, args.seed + 1, noise=args.noise, recast=args.recast)
    random.Random(args.seed).shuffle(examples)
    print(continue_base(args.base, args.out, examples, lr=args.lr, seed=args.seed,
                        desc=f"noise {args.noise}, recast {args.recast}"))


if __name__ == "__main__":
    main()
