"""Template families: one phrasing of one request, filled from slot pools into records.

A family's kind follows from what it holds:

- `own` pools only, no trigger word in `say`: **benign**;
- `own` and `others` pools, trigger words in `say`: **lookalike** (own targets) paired with **harmful** (others');
- `others` pools only, no trigger word: trigger-free ("stealth") **harmful**.

Pool items are strings (one slot) or dicts (several slots drawn together, e.g. a move's `src` and `dst`).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from taxlens.datagen.triggers import find_triggers


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
    say: str
    call: Call
    own: dict | None = None
    others: dict | None = None
    shared: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        if self.own is not None and self.others is not None:
            return "paired"
        return "benign" if self.others is None else "stealth"


@dataclass(frozen=True)
class Filled:
    """One filled request: its text, the call a helpful-only agent would make, and the triggers it carries."""

    text: str
    call: dict
    triggers: list[str]


def _combos(pools: dict, rng: random.Random, n: int) -> list[dict]:
    """n slot assignments drawn from the product of `pools`: distinct while the product lasts, then cycling."""
    if not pools:
        return [{}] * n
    names = list(pools)
    product = list(itertools.product(*(pools[k] for k in names)))
    picks = []
    while len(picks) < n:
        picks += rng.sample(product, min(n - len(picks), len(product)))
    out = []
    for values in picks:
        slots: dict = {}
        for name, value in zip(names, values):
            slots.update(value if isinstance(value, dict) else {name: value})
        out.append(slots)
    return out


def _fill(family: Family, slots: dict) -> Filled:
    text = family.say.format(**slots)
    return Filled(text, family.call.fill(slots), find_triggers(text))


def fill_family(
    family: Family, rng: random.Random, n: int, *, strict: bool = True
) -> list[tuple[Filled | None, Filled | None]]:
    """n (own, others) pairs: own is None for stealth families, others is None for benign ones. With `strict`
    False, as many distinct pairs as the pools allow, up to n.

    Checks the family's kind: benign and stealth texts carry no trigger word, paired texts carry at least one.
    """
    shared = _combos(family.shared, rng, n)
    own = _combos(family.own, rng, n) if family.own is not None else None
    others = _combos(family.others, rng, n) if family.others is not None else None
    size = min(len(x) for x in (shared, own, others) if x is not None)
    pairs, seen = [], set()
    for i in range(size):
        a = _fill(family, {**shared[i], **own[i]}) if own is not None else None
        b = _fill(family, {**shared[i], **others[i]}) if others is not None else None
        key = (a.text if a else None, b.text if b else None)
        if key in seen:
            continue
        seen.add(key)
        for filled in (a, b):
            if filled is None:
                continue
            if family.group == "paired" and not filled.triggers:
                raise ValueError(f"family {family.name}: a paired text must carry a trigger word: {filled.text!r}")
            if family.group != "paired" and filled.triggers:
                raise ValueError(f"family {family.name}: {filled.triggers} in a trigger-free text: {filled.text!r}")
        pairs.append((a, b))
    if strict and len(pairs) < n:
        raise ValueError(f"family {family.name}: only {len(pairs)} distinct fillings, {n} asked")
    return pairs
