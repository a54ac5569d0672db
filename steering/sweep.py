"""What a gated config would do at other thresholds, from three runs instead of one per threshold. With greedy
decoding a record's reply depends only on what the gate decides for it (ablate, add, or neither), and the gate
reads the stream before anything is steered, so one run under each decision and the gate's reading of each prompt
give the config's full-reply figures at any (threshold, add threshold): each record takes its reply from the run
of the decision it would get. The search chooses its thresholds on the first reply token's screen; this is the
curve around its choice, from whole replies. To run a config at thresholds of its sweep, set `gate.threshold` and
`gate.add_threshold` in a copy of its `steer.json`.

>>> sweep = sweep_thresholds(model, steering, records, data="datasets/toolcalls.jsonl", split="val")  # doctest: +SKIP
>>> [(r["threshold"], r["success_lookalike"]) for r in sweep.rows if r["add_threshold"] == 0.99][-2:]  # doctest: +SKIP
[(0.9, 0.51), (0.95, 0.5312)]
>>> write_sweep(sweep, "runs/sweep")                        # sweep.json, sweep.md, sweep.png  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from steering.hooks import Steering
from steering.search import (ADD_THRESHOLDS, GATE_PASSES, THRESHOLDS, attack_masks, gate_passes, trigger_free_kinds,
                             val_figures)
from taxlens.contract import Record
from taxlens.eval_report import EvalReport, FirstTokenKL
from taxlens.evaluation import build_report, evaluate

DECISIONS = ("ablate", "add", "none")


@dataclass(frozen=True)
class ThresholdSweep:
    """The config's own thresholds, each record's p(harmful), and per (threshold, add threshold) the figures the
    search reads (`search.val_figures`) and the share of harmful and injected prompts the gate passes."""

    threshold: float
    add_threshold: float | None  # None: the config adds nothing, and only the threshold moves
    p_harmful: dict[str, float]
    rows: tuple[dict, ...]

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "add_threshold": self.add_threshold, "rows": list(self.rows),
                "p_harmful": self.p_harmful}


def decision_runs(model, steering: Steering, records: list[Record], *, data: str, split: str | None,
                  max_new_tokens: int = 128, batch_size: int = 16, progress: bool = True
                  ) -> tuple[dict[str, EvalReport], dict[str, float]]:
    """Every record run under each decision of `steering`'s gate (`Steering.decided`; a decision that does nothing
    shares the unsteered run), and the gate's p(harmful) per record id, read in a one-token gated run."""
    if steering.gate is None:
        raise ValueError("a threshold sweep moves a gate's thresholds, and this steering has no gate")
    plain = evaluate(model, records, data=data, split=split, max_new_tokens=max_new_tokens, batch_size=batch_size,
                     progress=progress)
    runs = {}
    for decision in DECISIONS:
        decided = steering.decided(decision)
        runs[decision] = plain if decided is None else evaluate(
            model, records, data=data, split=split, steering=decided, steer=f"gate decision: {decision}",
            max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    read = evaluate(model, records, data=data, split=split, steering=steering, max_new_tokens=1,
                    batch_size=batch_size, progress=False)
    return runs, {row.id: row.gate_p_harmful for row in read.records}


def compose(records: list[Record], runs: dict[str, EvalReport], p_harmful: dict[str, float], threshold: float,
            add_threshold: float | None, *, data: str, split: str | None) -> EvalReport:
    """The report the gated config gives at these thresholds: each record's reply from its decision's run, its KL
    from that run (0 where unsteered), and the gate's reading and decision on its row."""
    by_id = {name: {row.id: row for row in run.records} for name, run in runs.items()}
    add_from = threshold if add_threshold is None else add_threshold
    decisions = {r.id: "ablate" if p_harmful[r.id] < threshold else "add" if p_harmful[r.id] >= add_from else "none"
                 for r in records}
    chosen = [by_id[decisions[r.id]][r.id] for r in records]
    report = build_report(runs["ablate"].model, records, [row.reply for row in chosen],
                          [row.refusal_score for row in chosen], data=data, split=split,
                          steer=f"threshold {threshold}, add threshold {add_threshold}", meta={"composed": True})
    unsteered = by_id["none"]
    kl = {r.id: (by_id[decisions[r.id]][r.id].kl_first_token or 0.0) for r in records if r.kind == "benign"}
    complied = [k for i, k in kl.items() if (unsteered[i].refusal_score or 0.0) <= 0]
    rows = tuple(replace(row, kl_first_token=kl.get(row.id), gate=decisions[row.id], gate_p_harmful=p_harmful[row.id])
                 for row in report.records)
    mean = (lambda xs: round(sum(xs) / len(xs), 5) if xs else None)
    return replace(report, records=rows, kl=FirstTokenKL(mean(list(kl.values())), mean(complied)))


def sweep_thresholds(model, steering: Steering, records: list[Record], *, data: str, split: str | None,
                     thresholds: tuple[float, ...] = THRESHOLDS, add_thresholds: tuple[float, ...] = ADD_THRESHOLDS,
                     max_new_tokens: int = 128, batch_size: int = 16, progress: bool = True) -> ThresholdSweep:
    """The config's figures at every threshold of `thresholds` (and its own) and, when it adds the direction,
    every add threshold of `add_thresholds` (and its own) at or above it."""
    gate = steering.gate
    runs, p_harmful = decision_runs(model, steering, records, data=data, split=split, max_new_tokens=max_new_tokens,
                                    batch_size=batch_size, progress=progress)
    adds = bool(steering.add_layer is not None and steering.coefficient)
    own_add = (gate.add_threshold or gate.threshold) if adds else None
    masks = attack_masks(trigger_free_kinds(records))
    p = torch.tensor([p_harmful[r.id] for r in records])
    rows = []
    for t in sorted({*thresholds, gate.threshold}):
        for a in (sorted({x for x in (*add_thresholds, own_add) if x >= t}) if adds else [None]):
            report = compose(records, runs, p_harmful, t, a, data=data, split=split)
            rows.append({"threshold": t, "add_threshold": a, **val_figures(report), **gate_passes(p, masks, t)})
    return ThresholdSweep(gate.threshold, own_add, p_harmful, tuple(rows))


def write_sweep(sweep: ThresholdSweep, out: str | Path) -> Path:
    """`sweep.json`, `sweep.md` (a table at the config's add threshold, and at its threshold for every add
    threshold) and `sweep.png` in the folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(sweep.to_json(), indent=1) + "\n")
    columns = ("success_benign", "success_lookalike", "refusal_harmful", "refusal_trigger_free", "asr",
               "kl_first_token_benign_complied", *GATE_PASSES)
    lines = [f"# What the gated config does at other thresholds (its own: {sweep.threshold}, add from "
             f"{sweep.add_threshold})", "", "| threshold | add threshold | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for row in sweep.rows:
        if row["add_threshold"] == sweep.add_threshold or row["threshold"] == sweep.threshold:
            mark = " **(config)**" if (row["threshold"], row["add_threshold"]) == (sweep.threshold,
                                                                                    sweep.add_threshold) else ""
            lines.append(f"| {row['threshold']}{mark} | {row['add_threshold']} | "
                         + " | ".join("–" if row.get(c) is None else f"{row[c]:.3f}" for c in columns) + " |")
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    plot_sweep(sweep, out / "sweep.png")
    return out


def plot_sweep(sweep: ThresholdSweep, path: Path) -> None:
    """Benign and lookalike success, harmful refusal and ASR against the threshold, at the config's add threshold
    (so up to it), the config's threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in sweep.rows if r["add_threshold"] == sweep.add_threshold]
    xs = [r["threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for key, label, style in (("success_benign", "benign success", "-"),
                              ("success_lookalike", "lookalike success", "-"),
                              ("refusal_harmful", "harmful refusal", "-"), ("asr", "attack success (injections)", "-"),
                              ("gate_passes_harmful", "harmful prompts the gate ablates", ":"),
                              ("gate_passes_injection", "injected prompts the gate ablates", ":")):
        if any(r.get(key) is not None for r in rows):
            ax.plot(xs, [r.get(key) for r in rows], style, marker="o", ms=3, label=label)
    ax.axvline(sweep.threshold, color="k", ls="--", lw=1)
    ax.set_xscale("logit")
    ax.set_xlabel("gate threshold (ablate below)")
    ax.set_ylabel("rate")
    ax.set_title(f"add threshold {sweep.add_threshold}; dashed: the config's threshold", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
