"""Where a base checkpoint first goes wrong on the right call: teacher-force the expected call on every other val
benign and lookalike record and, at the first token whose argmax differs, say whether it is in the tool name or an
argument, how often the current token occurs in the request, whether the right token occurs there, and whether the
model instead predicted the token after another occurrence (an induction head matching the wrong place).

    python benchmarks/copy_failures.py taxlens/organism/checkpoints/base
"""

from __future__ import annotations

import argparse
import collections

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from taxlens.contract import load_records
from taxlens.organism.corpus import call_text
from taxlens.tools import schemas_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=torch.float32).eval()
    records = [r for r in load_records(args.data, split="val") if r.kind in ("benign", "lookalike")][::2]
    classes, examples = collections.Counter(), []
    for r in records:
        prompt = tok.apply_chat_template(r.messages, tools=schemas_for(r.tools), add_generation_prompt=True,
                                         tokenize=False)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        t = tok(call_text(r.expected), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([p + t])).logits[0]
        pred = logits[len(p) - 1: len(p) + len(t) - 1].argmax(-1).tolist()
        wrong = [i for i, (a, b) in enumerate(zip(pred, t)) if a != b]
        if not wrong:
            classes["exact"] += 1
            continue
        i = wrong[0]
        current = (p + t)[len(p) + i - 1]
        after = [p[j + 1] for j, x in enumerate(p[:-1]) if x == current]
        prefix = tok.decode(t[:i])
        where = "argument" if '"arguments"' in prefix else "tool name"
        classes[f"{where}; current token in request {min(len(after), 3)}× (3 = 3 or more); right token in request: "
                f"{t[i] in p}; predicted the token after another occurrence: {pred[i] in after}"] += 1
        if len(examples) < args.examples:
            examples.append(f"{r.id}: …{prefix[-40:]!r} wanted {tok.decode([t[i]])!r}, got {tok.decode([pred[i]])!r}")
    print(f"{len(records)} records")
    for name, n in classes.most_common():
        print(f"{n:4d}  {name}")
    print("\n".join(examples))


if __name__ == "__main__":
    main()
