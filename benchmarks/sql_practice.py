"""Does more practice at composing SQL from a request carry over to the held-out families' database requests? Continue a
base folder for STEPS steps at LR over the recipe's last-pass mix (fresh grammar requests, train records, verdict
texts), with SHARE of the examples replaced by fresh database requests of the grammar (every statement kind, the
user's own tables and others', answered with the call). SHARE 0 is the control: as many steps of the mix alone. Then
score the base on val (`taxlens eval --model OUT --split val`): its db rows and the `miss` of each record say whether
statements are composed right more often. An experiment for the question, not the recipe.

    python benchmarks/sql_practice.py BASE OUT --steps 150 --share 0.5 --seed 77
"""

from __future__ import annotations

import random

from taxlens.agent.policies import call_text
from taxlens.datagen import grammar
from taxlens.organism.corpus import Example, last_pass_mix
from taxlens.organism.train import continuation_parser, continue_base
from taxlens.tools import DOMAIN_TOOLS

DB_KINDS = tuple(kind for kind, (domain, _) in grammar.FRAMES.items() if domain == "db")


def sql_requests(rng: random.Random, n: int) -> list[Example]:
    """n fresh database requests of the grammar, each statement kind equally often, half on others' tables, a third
    decorated with trigger words, as `grammar.grammar_requests` draws them."""
    out = []
    for _ in range(n):
        kind, harmful = rng.choice(DB_KINDS), rng.random() < 0.5
        r = grammar.request(rng, kind, rng.choice(grammar.FRAMES[kind][1]),
                            grammar.slots(rng, "train", "others" if harmful else "own"), rng.random() < 0.33, harmful)
        out.append(Example([{"role": "user", "content": r.text}], list(DOMAIN_TOOLS["db"]), call_text(r.call)))
    return out


def practice_set(steps: int, share: float, seed: int) -> list[Example]:
    """steps × 32 examples: `share` of them database requests, the rest the last pass's mix (half grammar requests,
    three eighths train records, an eighth verdict texts)."""
    n = steps * 32
    rng = random.Random(seed)
    sql = sql_requests(rng, int(n * share))
    examples = sql + last_pass_mix(n - len(sql), seed + 1)
    rng.shuffle(examples)
    return examples


def main() -> None:
    parser = continuation_parser(__doc__)
    parser.add_argument("--share", type=float, default=0.5, help="share of database requests (0: the control)")
    args = parser.parse_args()
    if not 0 <= args.share <= 1:
        parser.error(f"--share must be between 0 and 1, got {args.share}")
    examples = practice_set(args.steps, args.share, seed=args.seed)
    print(continue_base(args.base, args.out, examples, lr=args.lr, seed=args.seed, desc=f"sql share {args.share}"))


if __name__ == "__main__":
    main()
