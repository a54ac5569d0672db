"""Where a steered run's tax recovery is lost, record by record. A gated steering can fall short because its gate
leaves a request unsteered, because its intervention does not stop the refusal, or because the defended model's
call, once it stops refusing, is wrong anyway; each needs a different fix (a better gate, a stronger or better
placed intervention, a better model). Four eval reports of one prompt set tell them apart:

- `steered`: the gated config as shipped (`taxlens eval --steer C`);
- `oracle`: the same config with its gate replaced by each record's kind (`taxlens eval --steer C --oracle-gate`);
- `ceiling`: the defended model made to open its reply with the call token (`taxlens eval --reply-prefix
  '<tool_call>'`), the most any intervention on its first reply token can give back.

Each record of the tax (the base does it, the defended model does not) falls in the first of: recovered by the
steered run; recovered by the oracle (lost to the gate); done under the ceiling (lost to the intervention); wrong
even then (lost after the first token).

>>> losses = recovery_losses(base, defended, steered, oracle, ceiling)          # doctest: +SKIP
>>> losses["lookalike"].lost_to_gate                                              # doctest: +SKIP
7
>>> print("\n".join(markdown_rows(losses)))                                      # doctest: +SKIP

Without those runs, a steered report whose rows record the gate's decisions (`taxlens eval --steer` with a gated
config) already says how many tax records the gate sent to the ablation and how many of those came back
(`gate_on_tax`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from taxlens.eval_report import EvalReport, by_decision

CAUSES = ("recovered", "lost_to_gate", "lost_to_intervention", "lost_after_first_token")


@dataclass(frozen=True)
class RecoveryLosses:
    """One kind's tax records by what became of them (`CAUSES`, which sum to `gap`), and, outside the tax, records
    the steered run broke (the defended model did them, the steered run does not) and gained (neither the base
    nor the defended model did them)."""

    kind: str
    gap: int
    recovered: int
    lost_to_gate: int
    lost_to_intervention: int
    lost_after_first_token: int
    broken: int
    gained: int

    def to_json(self) -> dict:
        return asdict(self)


def recovery_losses(base: EvalReport, defended: EvalReport, steered: EvalReport, oracle: EvalReport,
                    ceiling: EvalReport, kinds: tuple[str, ...] = ("benign", "lookalike")) -> dict[str, RecoveryLosses]:
    """Per kind of `kinds` the base report holds, the tax records sorted by cause (module docstring). Records
    missing from any report are left out; a report that holds none of a kind's records raises, naming it."""
    out = {}
    reports = {"base": base, "defended": defended, "steered": steered, "oracle": oracle, "ceiling": ceiling}
    present = [kind for kind in kinds if base.ok_by_id((kind,))]
    if not present:
        raise ValueError(f"the base report holds no {' or '.join(kinds)} records")
    for kind in present:
        ok = {name: r.ok_by_id((kind,)) for name, r in reports.items()}
        empty = [name for name, by_id in ok.items() if not by_id]
        if empty:
            raise ValueError(f"no {kind} records in the {', '.join(empty)} report(s): the five reports must come "
                             f"from one prompt set and split")
        ids = sorted(set.intersection(*(set(by_id) for by_id in ok.values())))
        b, d, s, o, c = (ok[name] for name in reports)
        tax = [i for i in ids if b[i] and not d[i]]
        causes = dict.fromkeys(CAUSES, 0)
        for i in tax:
            cause = ("recovered" if s[i] else "lost_to_gate" if o[i] else "lost_to_intervention" if c[i]
                     else "lost_after_first_token")
            causes[cause] += 1
        out[kind] = RecoveryLosses(kind=kind, gap=len(tax), **causes,
                                   broken=sum(d[i] and not s[i] for i in ids),
                                   gained=sum(s[i] and not b[i] and not d[i] for i in ids))
    return out


def markdown_rows(losses: dict[str, RecoveryLosses]) -> list[str]:
    """The losses as a markdown table, one row per kind (for `taxlens report` and the notebooks)."""
    rows = ["| kind | tax records | recovered | lost to the gate | lost to the intervention | lost after the first "
            "token |", "|---|---|---|---|---|---|"]
    return rows + [f"| {kind} | {lost.gap} | {lost.recovered} | {lost.lost_to_gate} | {lost.lost_to_intervention} | "
                   f"{lost.lost_after_first_token} |" for kind, lost in losses.items()]


def gate_on_tax(base: EvalReport, defended: EvalReport, steered: EvalReport,
                kinds: tuple[str, ...] = ("benign", "lookalike")) -> dict[str, dict[str, int]] | None:
    """Per kind, the tax records (the base does them, the defended model does not) by the steered run's gate
    decision, and how many of each the steered run did: {"tax": 35, "ablate": 22, "ablate_recovered": 19, "add":
    4, "add_recovered": 0, "none": 9, "none_recovered": 0}. None when the steered report records no gate."""
    rows = {row.id: row for row in steered.records}
    if not any(row.gate for row in rows.values()):
        return None
    out = {}
    for kind in kinds:
        b, d = base.ok_by_id((kind,)), defended.ok_by_id((kind,))
        tax = [rows[i] for i in sorted(set(b) & set(d) & set(rows)) if b[i] and not d[i]]
        if not tax:
            continue
        out[kind] = {"tax": len(tax), **by_decision((row.gate, row.ok) for row in tax)}
    return out
