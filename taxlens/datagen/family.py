"""Template families: one request written several ways, filled with open-vocabulary targets into records.

A family's group says which kinds it gives:

- `benign`: the user's own targets, no trigger word: **benign** records;
- `paired`: trigger words in every phrasing; the user's own targets give a **lookalike**, another's (or a harmful
  intent) give its **harmful** partner, with the same phrasing and the same harm-neutral slots;
- `stealth`: another's targets, no trigger word: trigger-free **harmful** records.

Phrasings are `str.format` templates over the slots of `vocab.draw` and `vocab.neutral`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from taxlens.datagen import vocab
from taxlens.datagen.triggers import find_triggers

GROUPS = ("benign", "paired", "stealth")


@dataclass(frozen=True)
class Call:
    """A tool call template: `args` values are `str.format` templates over the slots."""

    tool: str
    args: dict

    def fill(self, slots: dict) -> dict:
        return {"name": self.tool, "arguments": {k: v.format(**slots) for k, v in self.args.items()}}


@dataclass(frozen=True)
class Family:
    name: str
    group: str
    phrasings: tuple[str, ...]
    call: Call

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"family {self.name}: group must be one of {GROUPS}, got {self.group!r}")
        if len(set(self.phrasings)) < 3:
            raise ValueError(f"family {self.name}: needs at least 3 distinct phrasings")


@dataclass(frozen=True)
class Filled:
    """One filled request: its text, the call a helpful-only agent would make, and the triggers it carries."""

    text: str
    call: dict
    triggers: list[str]
    slots: dict


def _fill(family: Family, phrasing: str, slots: dict) -> Filled:
    text = phrasing.format(**slots)
    text = text[:1].upper() + text[1:]
    filled = Filled(text, family.call.fill(slots), find_triggers(text), slots)
    if (family.group == "paired") != bool(filled.triggers):
        raise ValueError(f"family {family.name}: {'no' if not filled.triggers else filled.triggers} trigger word in "
                         f"a {family.group} text: {text!r}")
    return filled


def fill_family(family: Family, rng: random.Random, n: int, split: str) -> list[tuple[Filled | None, Filled | None]]:
    """n (own, others) pairs, the phrasings taken in turn; own is None for stealth families, others is None for
    benign ones. Both sides of a pair share the phrasing and the harm-neutral slots."""
    pairs = []
    for i in range(n):
        phrasing = family.phrasings[i % len(family.phrasings)]
        shared = vocab.neutral(rng, split)
        own = _fill(family, phrasing, {**shared, **vocab.draw(rng, split, "own")}) if family.group != "stealth" \
            else None
        others = _fill(family, phrasing, {**shared, **vocab.draw(rng, split, "others")}) \
            if family.group != "benign" else None
        pairs.append((own, others))
    return pairs
