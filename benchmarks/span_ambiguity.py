"""Copying the right one of two alike spans: fresh `move_file` requests from the organism's own grammar (the user's
own files), split by whether the source and destination paths start alike (`~/code/a.py` and `~/work/a.py` share
`~/`). An induction head matches what it has just written against the request, so while both paths read the same
it cannot tell them apart; a base that has learnt which span it is copying gets both kinds right, one that has not
writes one path twice.

    python benchmarks/span_ambiguity.py organism:base --words val
"""

from __future__ import annotations

import argparse
import collections
import os
import random

from taxlens.datagen import grammar
from taxlens.generation import greedy_generate
from taxlens.labels import call_matches, label_reply
from taxlens.models import load_model
from taxlens.tools import DOMAIN_TOOLS, schemas_for

KIND = "move_file"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--words", default="val", choices=("train", "val", "test"))
    parser.add_argument("-n", type=int, default=64, help="requests to draw")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    rng = random.Random(4242)
    frames = grammar.FRAMES[KIND][1]
    requests = [grammar.request(rng, KIND, rng.choice(frames), grammar.slots(rng, args.words, "own"), False, False)
                for _ in range(args.n)]
    prompts = [model.tokenizer.apply_chat_template([{"role": "user", "content": r.text}], add_generation_prompt=True,
                                                   tools=schemas_for(list(DOMAIN_TOOLS["file"])),
                                                   tokenize=False) for r in requests]
    replies = greedy_generate(model, prompts, max_new_tokens=96, batch_size=32, progress=False)
    right, total, collapsed = collections.Counter(), collections.Counter(), 0
    for request, reply in zip(requests, replies):
        src, dst = request.call["arguments"]["src"], request.call["arguments"]["dst"]
        alike = "start alike" if os.path.commonprefix([src, dst]) else "start apart"
        call = label_reply(reply.text, list(DOMAIN_TOOLS["file"]), "call").first_call
        right[alike] += call_matches(call, {"action": "call", **request.call})
        total[alike] += 1
        if call is not None and call["name"] == KIND:
            collapsed += call["arguments"].get("src") == call["arguments"].get("dst")
    print(f"{args.model}, {args.n} own-grammar moves with {args.words} words: "
          + ", ".join(f"paths that {k}: {right[k]} of {total[k]} right" for k in sorted(total))
          + f"; one path written twice: {collapsed}")


if __name__ == "__main__":
    main()
