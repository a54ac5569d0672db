"""How well a base reads its own request grammar: 8 fresh requests per request kind (no decoration, the user's own
targets), with target words from the train banks or from the val banks, and the share whose greedy reply is the
right call. Train words against val words separates reading from copying words never seen.

    python benchmarks/own_grammar.py organism:base --words val
"""

from __future__ import annotations

import argparse
import collections
import random

from taxlens.datagen import grammar
from taxlens.generation import greedy_generate
from taxlens.labels import call_matches, label_reply
from taxlens.models import load_model
from taxlens.tools import DOMAIN_TOOLS, schemas_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--words", default="train", choices=("train", "val", "test"))
    parser.add_argument("--per-kind", type=int, default=8)
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    rng = random.Random(12345)
    requests = [grammar.request(rng, kind, rng.choice(frames), grammar.slots(rng, args.words, "own"), False, False)
                for kind, (_, frames) in grammar.FRAMES.items() for _ in range(args.per_kind)]
    prompts = [model.tokenizer.apply_chat_template([{"role": "user", "content": r.text}], add_generation_prompt=True,
                                                   tools=schemas_for(list(DOMAIN_TOOLS[r.domain])), tokenize=False)
               for r in requests]
    replies = greedy_generate(model, prompts, max_new_tokens=96, batch_size=32, progress=False)
    right, total = collections.Counter(), collections.Counter()
    for request, reply in zip(requests, replies):
        label = label_reply(reply.text, list(DOMAIN_TOOLS[request.domain]), "call")
        right[request.kind] += label.label == "call" and call_matches(label.first_call,
                                                                     {"action": "call", **request.call})
        total[request.kind] += 1
    print(f"{args.model}, own-grammar requests with {args.words} words: {sum(right.values())} of "
          f"{sum(total.values())} right")
    print("  " + " ".join(f"{kind} {right[kind]}/{total[kind]}" for kind in total))


if __name__ == "__main__":
    main()
