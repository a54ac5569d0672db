"""A valid subset of a prompt set: a seeded sample of one split, in the file's own order, with every `pair` link
either kept whole (both partners drawn together) or dropped where the partner was not drawn.

>>> subset = sample_records(load_records("datasets/toolcalls.jsonl"), split="test", n=40, seed=0)  # doctest: +SKIP
>>> subset.dropped_links                                                                              # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from taxlens.contract import Record


@dataclass(frozen=True)
class Subset:
    records: list[Record]
    pairs_kept: int  # pairs whose partners were both drawn
    dropped_links: int  # `pair` fields removed because the partner was not drawn

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for r in self.records:
                fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        return path


def sample_records(records: list[Record], *, split: str | None, n: int, seed: int = 0,
                   pairs: str = "whole") -> Subset:
    """`n` records of `split` (all splits when None) drawn with `seed`.

    pairs="whole": minimal pairs are drawn as units of two, so the subset holds at most `n` records and every link
    stays valid; pairs="drop": records are drawn one by one and a link to an undrawn partner is removed."""
    if pairs not in ("whole", "drop"):
        raise ValueError(f"pairs must be 'whole' or 'drop', got {pairs!r}")
    pool = [r for r in records if split is None or r.split == split]
    if not pool:
        raise ValueError(f"no records in split {split!r} to sample from")
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    by_id = {r.id: r for r in pool}
    rng = random.Random(seed)
    if pairs == "whole":
        units, seen = [], set()
        for r in pool:
            if r.id in seen:
                continue
            partner = by_id.get(r.pair) if r.pair else None
            unit = [r] + ([partner] if partner is not None and partner.id not in seen else [])
            seen.update(x.id for x in unit)
            units.append(unit)
        rng.shuffle(units)
        chosen: set[str] = set()
        for unit in units:
            if len(chosen) + len(unit) <= n:
                chosen.update(x.id for x in unit)
    else:
        chosen = {r.id for r in rng.sample(pool, min(n, len(pool)))}
    out, dropped, kept = [], 0, 0
    for r in pool:
        if r.id not in chosen:
            continue
        if r.pair is not None and r.pair not in chosen:
            r, dropped = replace(r, pair=None), dropped + 1
        elif r.pair is not None:
            kept += 1
        out.append(r)
    return Subset(out, kept // 2, dropped)
