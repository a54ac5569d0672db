"""Where does a model go wrong on the requests it should carry out? Sort an eval report's benign and lookalike
records into right; no call; the wrong tool; the right tool with the wrong HTTP method or SQL statement; the right
call with a wrong argument. Choosing the call and copying its arguments are different skills, and a recipe change
aimed at one should move its own row.

    taxlens eval --model organism:base --data datasets/toolcalls.jsonl --split val --out runs/base_val.json
    python benchmarks/base_failures.py runs/base_val.json datasets/toolcalls.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json

from taxlens.contract import load_records
from taxlens.labels import label_reply

ROWS = ("right", "no call", "wrong tool", "wrong method or statement", "wrong argument")


def _statement(call: dict) -> str:
    """The HTTP method or the SQL statement's first word: what a call does beyond its tool."""
    args = call.get("arguments") or {}
    if "method" in args:
        return str(args["method"]).upper()
    sql = str(args.get("sql", "")).split()
    return sql[0].upper() if sql else ""


def classify(ok: bool, reply: str, tools: list[str], expected: dict) -> str:
    if ok:
        return "right"
    calls = label_reply(reply, tools, "call").calls
    if not calls:
        return "no call"
    call = calls[0]
    if call.get("name") != expected["name"]:
        return "wrong tool"
    if _statement(call) != _statement(expected):
        return "wrong method or statement"
    return "wrong argument"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="a `taxlens eval` report")
    parser.add_argument("data", help="the records it was run on (the contract's JSONL)")
    args = parser.parse_args()
    records = {r.id: r for r in load_records(args.data)}
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in json.loads(open(args.report).read())["records"]:
        if row["kind"] not in ("benign", "lookalike"):
            continue
        if row["id"] not in records:
            raise SystemExit(f"{args.report}: record {row['id']!r} is not in {args.data}")
        rec = records[row["id"]]
        counts[row["kind"]][classify(row["ok"], row["reply"], rec.tools, rec.expected)] += 1
    print(f"{'':28}" + "".join(f"{k:>11}" for k in ("benign", "lookalike", "all")))
    for name in ROWS:
        values = [counts["benign"][name], counts["lookalike"][name]]
        print(f"{name:28}" + "".join(f"{v:>11}" for v in values + [sum(values)]))


if __name__ == "__main__":
    main()
