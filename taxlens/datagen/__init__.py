"""The deterministic prompt-set generator behind `datasets/toolcalls.jsonl`.

Template families × slot values, one fixed seed. Splits are drawn by family, so a test family's phrasing never
appears in train, and a lookalike stays in its harmful partner's family, hence its split.

>>> samples = generate()
>>> sorted({s.record.kind for s in samples})
['benign', 'harmful', 'injection', 'lookalike']
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from taxlens.contract import Record, validate_record
from taxlens.datagen import api_families, db_families, file_families, injections
from taxlens.datagen.family import fill_family
from taxlens.tools import DOMAIN_TOOLS, TOOL_SCHEMAS

SEED = 20261126
PER_FAMILY = {"benign": 14, "paired": 14, "stealth": 24, "injection": 14}
# Families of each (domain, group), shuffled with the seed, go to train / val / test in these numbers.
SPLIT_SIZES = {9: (5, 2, 2), 3: (1, 1, 1)}

FAMILIES: dict[str, dict[str, list]] = {
    "file": {"benign": file_families.BENIGN, "paired": file_families.PAIRED, "stealth": file_families.STEALTH,
             "injection": injections.FILE},
    "api": {"benign": api_families.BENIGN, "paired": api_families.PAIRED, "stealth": api_families.STEALTH,
            "injection": injections.API},
    "db": {"benign": db_families.BENIGN, "paired": db_families.PAIRED, "stealth": db_families.STEALTH,
           "injection": injections.DB},
}


@dataclass(frozen=True)
class Sample:
    """A generated record plus what only the generator knows: its family, and the call a helpful-only agent makes
    (for a harmful record, the harmful call; for an injection, the injected call)."""

    record: Record
    family: str
    helpful_call: dict


def assign_splits(seed: int = SEED) -> dict[str, str]:
    """family name → split."""
    rng = random.Random(seed)
    split_of = {}
    for domain, groups in FAMILIES.items():
        for group, families in groups.items():
            names = [f.name for f in families]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate family names in {domain}/{group}")
            rng.shuffle(names)
            n_train, n_val, n_test = SPLIT_SIZES[len(names)]
            for i, name in enumerate(names):
                split_of[name] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return split_of


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _record(**fields) -> Record:
    return validate_record({k: v for k, v in fields.items() if v is not None}, "<generator>", 0)


def generate(seed: int = SEED) -> list[Sample]:
    """Every sample of the prompt set, in a fixed order (domain, group, family)."""
    rng = random.Random(seed)
    split_of = assign_splits(seed)
    samples: list[Sample] = []
    counter: dict[tuple[str, str], int] = {}

    def next_id(domain: str, kind: str) -> str:
        counter[(domain, kind)] = counter.get((domain, kind), 0) + 1
        return f"{domain}-{kind}-{counter[(domain, kind)]:04d}"

    for domain, groups in FAMILIES.items():
        tools = list(DOMAIN_TOOLS[domain])
        for group in ("benign", "paired", "stealth"):
            for family in groups[group]:
                split = split_of[family.name]
                for own, others in fill_family(family, rng, PER_FAMILY[group]):
                    if group == "benign":
                        rec = _record(id=next_id(domain, "benign"), domain=domain, kind="benign",
                                      messages=_user(own.text), tools=tools, expected={"action": "call", **own.call},
                                      triggers=own.triggers, split=split, family=family.name)
                        samples.append(Sample(rec, family.name, own.call))
                        continue
                    harm_id = next_id(domain, "harmful")
                    look_id = harm_id.replace("-harmful-", "-lookalike-") if own else None
                    if own:
                        rec = _record(id=look_id, domain=domain, kind="lookalike", messages=_user(own.text),
                                      tools=tools, expected={"action": "call", **own.call}, pair=harm_id,
                                      triggers=own.triggers, split=split, family=family.name)
                        samples.append(Sample(rec, family.name, own.call))
                    rec = _record(id=harm_id, domain=domain, kind="harmful", messages=_user(others.text), tools=tools,
                                  expected={"action": "refuse"}, pair=look_id, triggers=others.triggers, split=split,
                                  family=family.name)
                    samples.append(Sample(rec, family.name, others.call))
        for fam in groups["injection"]:
            for filled in injections.fill_injection(fam, rng, PER_FAMILY["injection"]):
                rec = _record(id=next_id(domain, "injection"), domain=domain, kind="injection",
                              messages=filled.messages, tools=tools, expected=filled.expected,
                              forbidden=filled.forbidden, triggers=filled.triggers, split=split_of[fam.name],
                              family=fam.name)
                samples.append(Sample(rec, fam.name, filled.injected_call))
    return samples


def write_dataset(out_dir: str | Path, seed: int = SEED) -> list[Sample]:
    """Write `toolcalls.jsonl` and `tools.json` into `out_dir`; returns the samples."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = generate(seed)
    with (out_dir / "toolcalls.jsonl").open("w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s.record.to_json(), ensure_ascii=False) + "\n")
    (out_dir / "tools.json").write_text(json.dumps(TOOL_SCHEMAS, indent=2) + "\n", encoding="utf-8")
    return samples
