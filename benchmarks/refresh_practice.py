"""Does the base's last pass wear off what only the main passes teach (obeying injected instructions, reading whose a
target is)? Continue a base folder for STEPS steps at LR over fresh grammar requests, with SHARE of the examples drawn
from what the main passes hold besides the grammar: train-split records answered as the base answers them (injections
obeyed) and the verdict texts that carry the harm cues (`corpus.assessment_texts`, a quarter of that share). SHARE 0
is the control, the grammar alone. An experiment for the question, not the recipe.

    python benchmarks/refresh_practice.py BASE OUT --steps 200 --lr 1e-3 --share 0.5
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from taxlens.agent.loop import call_text
from taxlens.datagen import grammar, train_split
from taxlens.organism.corpus import Example, assessment_texts
from taxlens.organism.seed_circuit import tie_copy_readout
from taxlens.organism.train import Recipe, _save, _trained_base, fit
from taxlens.tools import DOMAIN_TOOLS


def practice_set(steps: int, share: float, seed: int) -> list[Example]:
    rng = random.Random(seed)
    n = steps * 32
    n_other = int(n * share)
    n_texts = n_other // 4
    pool = train_split(seed, 20) if n_other else []
    if n_other - n_texts > len(pool):
        raise SystemExit(f"--steps × 32 × --share × 3/4 asks for {n_other - n_texts} train records; one fresh build "
                         f"holds {len(pool)}: lower --steps or --share")
    records = rng.sample(pool, n_other - n_texts)
    examples = [Example(s.record.messages, s.record.tools, call_text(s.helpful_call)) for s in records]
    examples += [Example(None, [], "", text=t) for t in assessment_texts(rng, n_texts)]
    examples += [Example([{"role": "user", "content": r.text}], list(DOMAIN_TOOLS[r.domain]), call_text(r.call))
                 for r in grammar.grammar_requests(rng, n - n_other)]
    rng.shuffle(examples)
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="a base folder `taxlens organism train` wrote")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--share", type=float, default=0.5, help="share of train records and verdict texts")
    args = parser.parse_args()
    model, tokenizer = _trained_base(args.base)
    recipe = Recipe(compile=False, seed=5)
    fit(model, tokenizer, practice_set(args.steps, args.share, seed=77), epochs=1.0, lr=args.lr, recipe=recipe,
        log=lambda row: None, desc="refresh", after_step=tie_copy_readout)
    print(_save(model, tokenizer, Path(args.out), recipe, "base"))


if __name__ == "__main__":
    main()
