"""benchmarks/paired.py: one figure's paired difference between two arms' reports on the same records, pooled over
seeds, with an interval from resampling (seed, family) units."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from taxlens.contract import load_records
from taxlens.eval_report import EvalReport

ROOT = Path(__file__).parents[1]
DATA = ROOT / "datasets" / "toolcalls.jsonl"
spec = importlib.util.spec_from_file_location("paired", ROOT / "benchmarks" / "paired.py")
paired = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired)


def _report(refused: set[str], records) -> EvalReport:
    """A report on `records` (every val harmful and lookalike record) refusing exactly the ids in `refused`."""
    rows = [{"id": r.id, "kind": r.kind, "label": "refuse" if r.id in refused else "call", "reply": "",
             "ok": (r.id in refused) == (r.kind == "harmful"), "family": r.extra["family"]} for r in records]
    return EvalReport.from_json({"model": "m", "data": str(DATA), "split": "val", "by_kind": {}, "records": rows})


def test_the_difference_is_b_minus_a_over_every_seed_and_record_of_the_figure():
    records = [r for r in load_records(DATA, split="val") if r.kind in ("harmful", "lookalike")]
    lookalikes = [r.id for r in records if r.kind == "lookalike"]
    bearing = [r.id for r in records if r.kind == "harmful" and r.trigger_free is False]
    free = [r.id for r in records if r.kind == "harmful" and r.trigger_free is True]
    # arm A refuses every lookalike and trigger-bearing attack at both seeds; arm B a quarter of the lookalikes at
    # seed 0 and none at seed 1, and every attack
    a = [_report(set(lookalikes + bearing), records)] * 2
    b = [_report(set(lookalikes[: len(lookalikes) // 4] + bearing + free), records),
         _report(set(bearing + free), records)]
    tax = paired.paired_difference(a, b, "lookalike over-refusal", resamples=200)
    assert tax["n"] == 2 * len(lookalikes) and tax["difference"] == pytest.approx(-100 * (1 - 1 / 8), abs=0.6)
    assert tax["lo"] <= tax["difference"] <= tax["hi"] < 0 and tax["units"] > 2
    assert paired.paired_difference(a, b, "trigger-bearing refusal")["difference"] == 0.0
    free_gain = paired.paired_difference(a, b, "trigger-free refusal")
    assert free_gain["difference"] == 100.0 and free_gain["n"] == 2 * len(free)
    with pytest.raises(ValueError, match="as many B reports as A reports"):
        paired.paired_difference(a, b[:1], "lookalike over-refusal")
    with pytest.raises(ValueError, match="figure 'tax'"):
        paired.paired_difference(a, b, "tax")
