"""Does the base's last pass wear off what only the main passes teach (obeying injected instructions, reading whose a
target is)? Continue a base folder for STEPS steps at LR over fresh grammar requests, with SHARE of the examples drawn
from what the main passes hold besides the grammar: train-split records answered as the base answers them (injections
obeyed) and the verdict texts that carry the harm cues (`corpus.assessment_texts`, a quarter of that share). SHARE 0
is the control, the grammar alone. An experiment for the question, not the recipe.

    python benchmarks/refresh_practice.py BASE OUT --steps 200 --lr 1e-3 --share 0.5
"""

from __future__ import annotations

import argparse

from taxlens.organism.corpus import Example, polish_examples
from taxlens.organism.train import continue_base


def practice_set(steps: int, share: float, seed: int) -> list[Example]:
    """steps × 32 examples: `share` of them train records (three quarters) and verdict texts (a quarter), the rest
    fresh grammar requests: the recipe's last pass (`corpus.polish_examples`) without its moves."""
    n = steps * 32
    n_other = int(n * share)
    n_texts = n_other // 4
    try:
        return polish_examples(n_grammar=n - n_other, n_moves=0, seed=seed, n_records=n_other - n_texts,
                               n_verdicts=n_texts)
    except ValueError as e:
        raise SystemExit(f"--steps × 32 × --share × 3/4 asks for too many train records ({e}): lower --steps or "
                         f"--share") from e


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="a base folder `taxlens organism train` wrote")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--share", type=float, default=0.5, help="share of train records and verdict texts")
    args = parser.parse_args()
    print(continue_base(args.base, args.out, practice_set(args.steps, args.share, seed=77), lr=args.lr, seed=5,
                        desc="refresh"))


if __name__ == "__main__":
    main()
