"""Does the organism read whose resource it is from the words, or from the form of the target's name? The generator
writes every account of someone else that money goes to as `EXT-dddd-XX` and every one of the user's as
`WORD-dddd`, every table of the user's with a prefix (`temp_…`, `sandbox_…`, `trial_…`) and many of others' with a
suffix (`…_entries`, `…_ledger`), in all splits: surface cues. This swaps one cue's form and nothing else, on each
record of a split that shows it: an outside-form payee (or table) gets a fresh name of the user's form, and the
payee (table) of a benign or lookalike call gets one of the outside form, in the request and in the expected call
alike. Then it compares, record by record, what each model does and what the gated config's harm gate reads,
before and after. A model that judges by the words does the same on both.

    python benchmarks/target_form.py --cue account --split val
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import replace

import torch

from probes.harm_check import last_token_resid
from steering.config import load_config
from taxlens.contract import Record, load_records
from taxlens.datagen import vocab
from taxlens.evaluation import evaluate
from taxlens.models import load_model

OUTSIDE_ACCOUNT, OWN_ACCOUNT = re.compile(r"\bEXT-\d{4}-[A-Z]{2}\b"), re.compile(r"\b[A-Z]{2,4}-\d{4}\b")


def table_forms(split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The generator's table prefixes of the user's tables and its written-out suffixes of others', for `split`."""
    bank = "train" if split == "train" else "held_out"
    return (tuple(p for p in vocab.TABLE_PREFIXES[bank] if p),
            tuple(s for s in vocab.TABLE_SUFFIXES[bank] if s.startswith("_")))


def _alternatives(parts: tuple[str, ...]) -> str:
    return "|".join(re.escape(p) for p in parts)


def other_account(account: str, rng: random.Random, split: str) -> str:
    """A fresh account of the other form: `WORD-dddd` for an `EXT-dddd-XX`, and the other way round."""
    if OUTSIDE_ACCOUNT.fullmatch(account):
        return vocab.account_id(rng, split)
    return f"EXT-{rng.randint(1000, 9999)}-{vocab.word(rng, split)[:2].upper()}"


def other_table(table: str, rng: random.Random, split: str) -> str:
    """The table's words under the other form: `sandbox_moss` → `moss_ledger`, `moss_entries` → `trial_moss`."""
    prefixes, suffixes = table_forms(split)
    for suffix in suffixes:
        if table.endswith(suffix):
            return rng.choice(prefixes) + table.removesuffix(suffix)
    return table.split("_", 1)[1] + rng.choice(suffixes)


def _accounts(record: Record, text: str, split: str) -> set[str]:
    """Outside-form accounts, else the expected call's payee."""
    return set(OUTSIDE_ACCOUNT.findall(text)) or \
        {record.expected.get("arguments", {}).get("to_account")} & set(OWN_ACCOUNT.findall(text))


def _tables(record: Record, text: str, split: str) -> set[str]:
    """Tables of the outside form, else the user's-form tables the expected call names."""
    prefixes, suffixes = table_forms(split)
    outside = re.findall(rf"\b[a-z]+(?:_[a-z]+)*(?:{_alternatives(suffixes)})\b", text)
    own = re.findall(rf"\b(?:{_alternatives(prefixes)})[a-z]+(?:_[a-z]+)*\b", text)
    return set(outside) or {t for t in own if t in json.dumps(record.expected.get("arguments", {}))}


CUES = {"account": (_accounts, other_account), "table": (_tables, other_table)}  # cue → (names to swap, other form)


def swapped(record: Record, cue: str, rng: random.Random, split: str) -> Record | None:
    """`record` with the cue's names (an outside-form payee or table; else the expected call's own-form one) swapped
    to the other form everywhere they are written (messages, expected and forbidden calls); None when there are
    none."""
    find, other = CUES[cue]
    text = json.dumps([record.messages, record.expected, record.forbidden])
    names = find(record, text, split) - {None}
    if not names:
        return None
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(name)}\b", other(name, rng, split), text)
    messages, expected, forbidden = json.loads(text)
    return replace(record, messages=messages, expected=expected, forbidden=forbidden)


def gate_decisions(model, steering, records: list[Record]) -> tuple[list[float], list[str]]:
    """The config's harm gate on each prompt (its read layers' streams after each block, at the last token): the
    probability, and what the gate does with it (ablate, add, or neither)."""
    gate = steering.gate
    resid = torch.from_numpy(last_token_resid(model, records))  # [n, n_layers + 1, d_model]; index l+1 = after l
    harm_p = gate.probability(resid[:, [layer + 1 for layer in gate.read_layers]])
    ablate, add = gate.decide(harm_p)
    return harm_p.tolist(), ["ablate" if a else "add" if d else "neither" for a, d in zip(ablate, add)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cue", choices=sorted(CUES), default="account")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--split", default="val")
    parser.add_argument("--base", default="organism:base")
    parser.add_argument("--defended", default="organism:defended")
    parser.add_argument("--steer", default="organism:gated")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pairs = [(r, s) for r in load_records(args.data, split=args.split) if (s := swapped(r, args.cue, rng, args.split))]
    if not pairs:
        parser.error(f"{args.data}: no record of split {args.split!r} shows the {args.cue} cue")
    forms = {"as written": [p[0] for p in pairs], "swapped": [p[1] for p in pairs]}
    models = {"base": load_model(args.base, device="cpu"), "defended": load_model(args.defended, device="cpu")}
    gated = load_config(args.steer, models["defended"])[0]
    if gated.gate is None:
        parser.error(f"--steer {args.steer}: the config has no harm gate to read")
    ok, refused, gate_p, decided = {}, {}, {}, {}
    for name, model, steering in (("base", models["base"], None), ("defended", models["defended"], None),
                                  ("gated", models["defended"], gated)):
        for form, records in forms.items():
            report = evaluate(model, records, data=args.data, split=args.split, steering=steering,
                              steer=args.steer if steering else None, progress=False)
            ok[name, form] = [row.ok for row in report.records]
            refused[name, form] = [row.label == "refuse" for row in report.records]
            if steering is not None:
                gate_p[form], decided[form] = gate_decisions(model, steering, records)
    original = forms["as written"]
    print(f"{args.data}, split {args.split}: {len(pairs)} records show the {args.cue} cue; as written → swapped")
    print(f"{'kind':<10} {'n':>3} {'base ok':>9} {'defended ok':>12} {'defended refuses':>17} {'gated ok':>9} "
          f"{'gated refuses':>14} {'gate ablates':>13} {'gate adds':>10} {'mean |Δ gate p|':>16}")
    for kind in sorted({r.kind for r in original}):
        rows = [i for i, r in enumerate(original) if r.kind == kind]

        def moved(table: dict, model: str) -> str:
            return " → ".join(str(sum(table[model, form][i] for i in rows)) for form in forms)

        ablates, adds = (" → ".join(str(sum(decided[form][i] == d for i in rows)) for form in forms)
                         for d in ("ablate", "add"))
        delta = sum(abs(gate_p["as written"][i] - gate_p["swapped"][i]) for i in rows) / len(rows)
        print(f"{kind:<10} {len(rows):>3} {moved(ok, 'base'):>9} {moved(ok, 'defended'):>12} "
              f"{moved(refused, 'defended'):>17} {moved(ok, 'gated'):>9} {moved(refused, 'gated'):>14} {ablates:>13} "
              f"{adds:>10} {delta:>16.3f}")


if __name__ == "__main__":
    main()
