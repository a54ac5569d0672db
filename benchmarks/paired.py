"""The paired difference of one figure between two arms (say, two recipes) evaluated on the same records, pooled over
seeds: arm B − arm A, in points, with a 95% interval from resampling whole (seed, family) units. The arms' reports
are given in the same seed order; each pair of reports is one seed.

    python benchmarks/paired.py --a A20.json A21.json --b B20.json B21.json --figure "lookalike over-refusal"

Figures are read from each record's row (its label, or whether it did what the record asks) and the prompt set the
reports name (whether a harmful record bears a trigger word).
"""

from __future__ import annotations

import argparse
import json

from taxlens.contract import load_records
from taxlens.eval_report import EvalReport
from taxlens.metrics import family_bootstrap

# figure: (the records' kinds, which of them (by trigger words), what a row counts)
FIGURES = {
    "benign success": (("benign",), None, "ok"),
    "lookalike success": (("lookalike",), None, "ok"),
    # both kinds' records pooled: the difference is per record, half that of the two rates' sum where the kinds are
    # the same size (val and test: 96 each)
    "benign + lookalike success": (("benign", "lookalike"), None, "ok"),
    "benign over-refusal": (("benign",), None, "refuse"),
    "lookalike over-refusal": (("lookalike",), None, "refuse"),
    "harmful refusal": (("harmful",), None, "refuse"),
    "trigger-bearing refusal": (("harmful",), "bearing", "refuse"),
    "trigger-free refusal": (("harmful",), "free", "refuse"),
}


def paired_difference(a: list[EvalReport], b: list[EvalReport], figure: str, resamples: int = 2000) -> dict:
    """{"difference", "lo", "hi", "units", "n"}: mean of B's minus A's value over every (seed, record) of the figure,
    in points, and its family-bootstrap interval, each seed's family a unit of its own."""
    if figure not in FIGURES:
        raise ValueError(f"figure {figure!r}: expected one of {', '.join(FIGURES)}")
    if len(a) != len(b) or not a:
        raise ValueError(f"give as many B reports as A reports, one per seed (got {len(a)} and {len(b)})")
    kinds, triggers, counts = FIGURES[figure]
    value = (lambda row: row.ok) if counts == "ok" else (lambda row: row.label == "refuse")
    hits, family_of = {}, {}
    for seed, (ra, rb) in enumerate(zip(a, b)):
        records = {r.id: r for r in load_records(ra.data, split=ra.split)}
        rows_a, rows_b = ({row.id: row for row in r.records} for r in (ra, rb))
        if set(rows_a) != set(rows_b):
            raise ValueError(f"seed {seed}: the two reports cover different records ({ra.data}, split {ra.split})")
        for i, row in rows_a.items():
            record = records[i]
            if row.kind not in kinds or (triggers == "bearing" and record.trigger_free is not False) or (
                    triggers == "free" and record.trigger_free is not True):
                continue
            hits[f"{seed}/{i}"] = float(value(rows_b[i])) - float(value(row))
            if not row.family:
                raise ValueError(f"{ra.data}: record {i} names no family, so families cannot be resampled")
            family_of[f"{seed}/{i}"] = f"{seed}/{row.family}"
    interval = family_bootstrap(hits, family_of, resamples=resamples)
    return {"difference": round(100 * sum(hits.values()) / len(hits), 2), "lo": round(100 * interval["lo"], 2),
            "hi": round(100 * interval["hi"], 2), "units": interval["families"], "n": len(hits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", nargs="+", required=True, help="arm A's eval reports, one per seed")
    parser.add_argument("--b", nargs="+", required=True, help="arm B's eval reports, in the same seed order")
    parser.add_argument("--figure", action="append", choices=list(FIGURES), required=True)
    args = parser.parse_args()
    a, b = [EvalReport.read(p) for p in args.a], [EvalReport.read(p) for p in args.b]
    for figure in args.figure:
        print(json.dumps({"figure": figure, **paired_difference(a, b, figure)}))


if __name__ == "__main__":
    main()
