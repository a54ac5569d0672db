"""Do an organism's failures sit on pieces its training text never copies? Count, over one pass of the recipe's base
text, how often each token is copied (it occurs in a chat's reply and in the user message the reply answers); then
split an eval report's benign and lookalike records by the fewest copies of any argument token their request holds,
and give each group's failure rate.

    taxlens eval --model organism:base --data datasets/toolcalls.jsonl --split val --out runs/base_val.json
    python benchmarks/copy_coverage.py runs/base_val.json
"""

from __future__ import annotations

import argparse
import collections
import json

from taxlens.contract import load_records
from taxlens.models import resolve
from taxlens.organism.corpus import build_examples
from taxlens.organism.fit_check import checkpoint_recipe

GROUPS = ((0, "never copied"), (1, "1-9 copies"), (10, "10-99"), (100, "100 or more"))


def copy_counts(tokenizer, examples) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for ex in examples:
        if ex.messages and isinstance(ex.messages[-1].get("content"), str):
            user = set(tokenizer(ex.messages[-1]["content"], add_special_tokens=False)["input_ids"])
            counts.update(user & set(tokenizer(ex.reply, add_special_tokens=False)["input_ids"]))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="a `taxlens eval` report of an organism checkpoint")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    report = json.loads(open(args.report).read())
    folder = resolve(report["model"])
    recipe = checkpoint_recipe(report["model"])["recipe"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    counts = copy_counts(tokenizer, build_examples("base", per_family=recipe["per_family"],
                                                   n_grammar=recipe["n_grammar"], seed=recipe["seed"],
                                                   agent_per_phrasing=recipe.get("agent_per_phrasing", 0),
                                                   agent_waves=recipe.get("agent_waves", 1)))
    records = {r.id: r for r in load_records(report["data"])}
    total, failed, pieces = collections.Counter(), collections.Counter(), collections.Counter()
    for row in report["records"]:
        record = records[row["id"]]
        if row["kind"] not in ("benign", "lookalike") or record.expected.get("action") != "call":
            continue
        request = set(tokenizer(" ".join(m["content"] for m in record.messages if m["role"] == "user"),
                                add_special_tokens=False)["input_ids"])
        argument = " ".join(str(v) for v in record.expected["arguments"].values())
        copied = [i for i in tokenizer(argument, add_special_tokens=False)["input_ids"] if i in request]
        fewest = min((counts[i] for i in copied), default=100)
        group = max(g for g, _ in GROUPS if fewest >= g)
        total[group] += 1
        failed[group] += not row["ok"]
        pieces.update(tokenizer.decode([i]) for i in copied if counts[i] == 0)
    print(f"{report['model']} on {report['data']} ({report['split']}), benign and lookalike calls, by the fewest "
          "copies in one pass of training text of an argument token the request holds:")
    for group, name in GROUPS:
        if total[group]:
            print(f"  {name:<12} {total[group]:>4} records, {failed[group]:>4} failed "
                  f"({100 * failed[group] / total[group]:.0f}%)")
    print("  never-copied pieces:", ", ".join(f"{p} ({n})" for p, n in pieces.most_common(15)))


if __name__ == "__main__":
    main()
