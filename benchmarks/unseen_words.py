"""Words of the held-out requests that the organism's training text never shows, and whether the base does worse on
the requests that hold one.

Counts, per split, the words of each val or test benign and lookalike user message, leaving out those of the
expected call's arguments (targets are composed from split banks by design), that occur nowhere in the full build
of the recipe's training text (`taxlens.organism.leakage.organism_texts`). Given an eval report of a base on val,
splits its success by whether a request holds such a word, with Wilson intervals.

    python benchmarks/unseen_words.py --report runs/base_val.json --json runs/unseen_words.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "toolcalls.jsonl"


def unseen_words(record, seen: Counter) -> list[str]:
    """The words of `record`'s last user message, not in its expected arguments, that `seen` never counted."""
    from taxlens.organism.leakage import words

    user = [m["content"] for m in record.messages if m["role"] == "user"][-1]
    targets = {w for v in (record.expected.get("arguments") or {}).values() for w in words(str(v))}
    return [w for w in words(user) if w not in targets and not seen[w]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", help="an eval report of a base on the val split, to split its success")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    from taxlens.contract import load_records
    from taxlens.metrics import wilson
    from taxlens.organism.leakage import organism_texts, words
    from taxlens.organism.recipe import Recipe

    seen = Counter(w for text in organism_texts(Recipe()) for w in words(text))
    records = [r for r in load_records(DATA) if r.split in ("val", "test") and r.kind in ("benign", "lookalike")]
    out: dict = {"splits": {}}
    for split in ("val", "test"):
        mine = [r for r in records if r.split == split]
        unseen = Counter(w for r in mine for w in unseen_words(r, seen))
        total = sum(len(words([m["content"] for m in r.messages if m["role"] == "user"][-1])) for r in mine)
        out["splits"][split] = {"records": len(mine), "records_with_one": sum(bool(unseen_words(r, seen)) for r in mine),
                                "unseen_word_uses": sum(unseen.values()), "user_words": total,
                                "most_common": unseen.most_common(15)}
        print(f"{split}: {out['splits'][split]['records_with_one']} of {len(mine)} requests hold a word the training "
              f"text never shows ({sum(unseen.values())} uses of {len(unseen)} words); commonest: "
              + ", ".join(f"{w} {n}" for w, n in unseen.most_common(10)))
    if args.report:
        report = json.loads(Path(args.report).read_text())
        if report.get("split") != "val":
            raise SystemExit(f"{args.report}: a val report is needed (its split is {report.get('split')!r})")
        ok = {row["id"]: row["ok"] for row in report["records"]}
        split_by: dict[str, dict] = {}
        for has in (True, False):
            hits = [ok[r.id] for r in records if r.split == "val" and bool(unseen_words(r, seen)) == has]
            split_by["with an unseen word" if has else "without"] = wilson(sum(hits), len(hits))
        out["val_success"] = split_by
        for name, w in split_by.items():
            print(f"val success, requests {name}: {100 * w['rate']:.1f}% [{100 * w['lo']:.1f}, {100 * w['hi']:.1f}] "
                  f"(n = {w['n']})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
