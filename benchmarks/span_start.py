"""Where copying an argument fails: its first token or the rest. Teacher-forced on fresh requests of the organism's
own grammar (the user's own targets), for each argument value the call copies from the request: is the value's
first token predicted right, are its later tokens, and which head puts most attention from the position that
predicts the first token onto the request token it should copy. Later tokens follow from the token before them
(the induction head's match); the first has no such match, so a head must find where the value starts from the
words around it ("mail X", "from X").

    python benchmarks/span_start.py organism:base --kinds email,money,move_file,write_file
"""

from __future__ import annotations

import argparse
import collections
import json
import random

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from taxlens.agent.policies import call_text
from taxlens.datagen import grammar
from taxlens.models import resolve
from taxlens.tools import DOMAIN_TOOLS, schemas_for


def token_span(offsets: list[tuple[int, int]], start: int, length: int) -> list[int]:
    """Indices of the tokens that lie inside characters [start, start + length)."""
    return [i for i, (s, e) in enumerate(offsets) if e > s and s >= start and e <= start + length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a base folder or organism:base")
    parser.add_argument("--kinds", default="email,money,move_file,write_file")
    parser.add_argument("--words", default="train", choices=("train", "val", "test"))
    parser.add_argument("-n", type=int, default=12, help="requests per kind")
    args = parser.parse_args()
    folder = resolve(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    rng = random.Random(5)
    first, rest, heads = collections.Counter(), collections.Counter(), collections.defaultdict(collections.Counter)
    n_first, n_rest, peak = collections.Counter(), collections.Counter(), collections.Counter()
    for kind in args.kinds.split(","):
        for _ in range(args.n):
            t = grammar.slots(rng, args.words, "own")
            r = grammar.request(rng, kind, rng.choice(grammar.FRAMES[kind][1]), t, False, False)
            prompt = tokenizer.apply_chat_template([{"role": "user", "content": r.text}], add_generation_prompt=True,
                                                   tools=schemas_for(list(DOMAIN_TOOLS[r.domain])), tokenize=False)
            reply = call_text(r.call)
            enc = tokenizer(prompt + reply, add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = enc["input_ids"], enc["offset_mapping"]
            with torch.no_grad():
                out = model(torch.tensor([ids]), output_attentions=True)
            pred = out.logits[0].argmax(-1)
            attention = torch.stack([a[0] for a in out.attentions])  # [layer, head, query, key]
            text_at = prompt.rfind(r.text)
            for arg, value in r.call["arguments"].items():
                value = str(value)
                at = reply.find(json.dumps(value))
                # SQL is written, not copied; an escaped value (a JSON body as a string) is not the request's text
                if value not in r.text or at < 0 or json.dumps(value)[1:-1] != value:
                    continue
                where = token_span(offsets, len(prompt) + at + 1, len(value))
                source = token_span(offsets, text_at + r.text.find(value), len(value))
                if not where or not source:
                    continue
                key = f"{kind}.{arg}"
                first[key] += int(pred[where[0] - 1] == ids[where[0]])
                n_first[key] += 1
                rest[key] += sum(int(pred[i - 1] == ids[i]) for i in where[1:])
                n_rest[key] += len(where) - 1
                weight = attention[:, :, where[0] - 1, source[0]]
                layer, head = divmod(int(weight.argmax()), weight.shape[1])
                heads[key][f"L{layer}H{head}"] += 1
                peak[key] += float(weight.max())
    print(f"{args.model}, {args.n} own-grammar requests a kind, {args.words} words (teacher-forced)")
    for key in n_first:
        top = ", ".join(f"{h} ×{c}" for h, c in heads[key].most_common(2))
        print(f"  {key:22s} first token {first[key]:2d}/{n_first[key]}  later tokens {rest[key]:3d}/{n_rest[key]}"
              f"  attention on the value's start: {peak[key] / n_first[key]:.2f} (top heads {top})")


if __name__ == "__main__":
    main()
