"""A gated config's agent-task figures at every gate threshold, and the threshold to run agents at.

`taxlens steer` searches a gate's threshold on single prompts, where a tool result appears only in injections; run
as an agent, the same gate reads every turn after a tool result, and a threshold chosen on prompts can pass none of
the turns the defence wore down, or too many attack turns (docs/results.md, runs 43-48). This sweeps the threshold
on agent tasks instead, optionally with the turns the gate passes answered by another model (`passed_to`, the
defended model's base), and picks the threshold with the most benign and lookalike tasks done whose harm done and
attack success stay within `MARGIN` of the defended model's.

With greedy decoding a task's trajectory depends only on what the gate decides at each of its turns, and the gate
reads each turn before anything is steered; so a trajectory run at one threshold is the trajectory at another as
long as every turn's recorded p(harmful) gets the same decision at both, and only the other tasks run again.

>>> sweep = sweep_agent_thresholds(defended, steering, load_tasks("datasets/agent_tasks.jsonl", split="val"),
...                                passed_to=base)                                   # doctest: +SKIP
>>> sweep.chosen, sweep.row(sweep.chosen)["success_lookalike"]                     # doctest: +SKIP
(0.5, 0.2222)
>>> write_agent_sweep(sweep, "runs/agent_sweep", config="runs/steer")  # sweep.json/.md/.png, steer.json  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from steering.config import config_path, config_source, load_config, save_config
from steering.search import MARGIN, THRESHOLDS
from taxlens.agent import AgentReport, ModelPolicy, run_tasks
from taxlens.agent.loop import Trajectory

# what a row reads from an agent report: (column, kind, figure)
FIGURES = (("success_benign", "benign", "task_success"), ("success_lookalike", "lookalike", "task_success"),
           ("harm_done", "harmful", "harm_done"), ("asr", "injection", "asr"))
# the fields `save_config` writes itself
SAVED = ("format", "method", "model", "adapter", "adapter_scale", "weights_digest", "d_model", "vectors", "ablate",
         "one_sided", "positions", "ablate_from", "stream_only", "add_layer", "coefficient", "gate", "settings")


@dataclass(frozen=True)
class AgentSweep:
    """Per threshold, the agent report under the gate at that threshold; the defended model's report unsteered and,
    with a `passed_to` model, that model's own (the base); the threshold chosen (None: none keeps the defence)."""

    reports: dict[float, AgentReport]
    defended: AgentReport
    base: AgentReport | None
    passed_to: str | None
    reran: dict[float, int]  # tasks each threshold had to run again (the rest reused a trajectory)
    chosen: float | None

    def row(self, threshold: float) -> dict:
        return {"threshold": threshold, **figures_of(self.reports[threshold]), "tasks_run": self.reran[threshold],
                "lookalike_gap_recovered": gap_recovered(self.base, self.defended, self.reports[threshold])}

    def cross_fitted(self) -> dict:
        """What choosing on val is worth on tasks it was not chosen on: each kind's task families split in two
        (sorted, alternately), each half run at the threshold the rule picks on the other half (the defended model
        unsteered where none is feasible there), the halves pooled. `thresholds`: each half's pick."""
        kinds = {t.family or t.task_id: t.kind for t in self.defended.trajectories}
        half = {f: [g for g in sorted(kinds) if kinds[g] == kinds[f]].index(f) % 2 for f in kinds}

        def part(report: AgentReport, k: int, keep: bool = True) -> AgentReport:
            return AgentReport.build(report.model, report.tasks, report.split, report.steer, [
                t for t in report.trajectories if (half[t.family or t.task_id] == k) == keep])

        picked, pooled = [], []
        for k in (0, 1):
            rows = [{"threshold": t, **figures_of(part(r, k, keep=False))} for t, r in self.reports.items()]
            chosen = choose_threshold(rows, figures_of(part(self.defended, k, keep=False)))
            picked.append(chosen)
            pooled += part(self.defended if chosen is None else self.reports[chosen], k).trajectories
        steered = AgentReport.build(self.defended.model, self.defended.tasks, self.defended.split, "cross-fitted",
                                    pooled)
        return {"thresholds": picked, **figures_of(steered),
                "lookalike_gap_recovered": gap_recovered(self.base, self.defended, steered)}

    def to_json(self) -> dict:
        return {"passed_to": self.passed_to, "chosen": self.chosen, "margin": MARGIN,
                "defended": figures_of(self.defended), "base": None if self.base is None else figures_of(self.base),
                "rows": [self.row(t) for t in sorted(self.reports)], "cross_fitted": self.cross_fitted()}


def figures_of(report: AgentReport) -> dict:
    out = {}
    for column, kind, name in FIGURES:
        figure = report.figure(kind, name)
        out[column] = None if figure is None else round(figure.rate, 4)
    return out


def gap_recovered(base: AgentReport | None, defended: AgentReport, steered: AgentReport) -> float | None:
    """Share of the base − defended gap in lookalike task success that `steered` closes (None without a gap)."""
    if base is None:
        return None
    b, d, s = (figures_of(r)["success_lookalike"] for r in (base, defended, steered))
    return None if None in (b, d, s) or b <= d else round((s - d) / (b - d), 4)


def at_threshold(steering, threshold: float):
    """`steering` with its gate at `threshold` (`HarmGate.at`)."""
    return replace(steering, gate=steering.gate.at(threshold))


def same_decisions(trajectory: Trajectory, gate_a, gate_b) -> bool:
    """Whether both gates decide every turn of `trajectory` alike, from the p(harmful) each step recorded."""
    p = [s.gate_p_harmful for s in trajectory.steps]
    if not p or None in p:
        return False
    harm_p = torch.tensor(p)
    return all(torch.equal(a, b) for a, b in zip(gate_a.decide(harm_p), gate_b.decide(harm_p)))


def feasible(row: dict, defended: dict) -> bool:
    """Harm done and attack success each within `MARGIN` of the defended model's (where the tasks have them)."""
    return all(row[key] is None or defended[key] is None or row[key] <= defended[key] + MARGIN + 1e-9
               for key in ("harm_done", "asr"))


def done(figures: dict) -> float:
    """Benign plus lookalike task success: what the choice maximises."""
    return round(sum(figures[k] or 0.0 for k in ("success_benign", "success_lookalike")), 9)


def choose_threshold(rows: list[dict], defended: dict) -> float | None:
    """The feasible threshold with the most benign and lookalike tasks done; among equals the lowest, which passes
    the fewest turns."""
    ok = [r for r in rows if feasible(r, defended)]
    return min(ok, key=lambda r: (-done(r), r["threshold"]))["threshold"] if ok else None


def sweep_agent_thresholds(model, steering, tasks: list, *, passed_to=None, thresholds: tuple[float, ...] = THRESHOLDS,
                           name: str = "tasks", split: str | None = None, max_steps: int = 8,
                           max_new_tokens: int = 128, batch_size: int = 16, tool_role: str | None = None,
                           progress: bool = True) -> AgentSweep:
    """Run `tasks` with `model` under `steering` (gated) at each of `thresholds` (and its own), the turns its gate
    passes answered by `passed_to` when given; plus the defended model unsteered and `passed_to` alone."""
    if getattr(steering, "gate", None) is None:
        raise ValueError("an agent threshold sweep moves a gate's threshold, and this steering has no gate")
    for t in thresholds:
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"threshold {t} is not a probability in [0, 1]")

    def run(policy, chosen: list, desc: str) -> list[Trajectory]:
        return run_tasks(policy, chosen, max_steps=max_steps, chunk=batch_size, progress=progress, desc=desc)

    def report(label: str, trajectories: list[Trajectory], threshold: float | None = None) -> AgentReport:
        meta = {"n": len(tasks), "max_steps": max_steps, "max_new_tokens": max_new_tokens, "decoding": "greedy",
                "passed_to": passed_to and passed_to.name, "gate_threshold": threshold}
        return AgentReport.build(label, name, split, None if threshold is None else "swept", trajectories, meta=meta)

    policy = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "tool_role": tool_role}
    defended = report(model.name, run(ModelPolicy(model, **policy), tasks, f"agent {model.name}"))
    base = None if passed_to is None else report(
        passed_to.name, run(ModelPolicy(passed_to, **policy), tasks, f"agent {passed_to.name}"))
    reports, reran, previous = {}, {}, None
    for t in sorted({*thresholds, steering.gate.threshold}):
        steered = at_threshold(steering, t)
        trajectories = list(previous[1]) if previous else [None] * len(tasks)
        redo = [i for i, tr in enumerate(trajectories)
                if tr is None or not same_decisions(tr, previous[0].gate, steered.gate)]
        fresh = run(ModelPolicy(model, steering=steered, passed_to=passed_to, **policy), [tasks[i] for i in redo],
                    f"agent at threshold {t}")
        for i, tr in zip(redo, fresh):
            trajectories[i] = tr
        reports[t], reran[t], previous = report(model.name, trajectories, t), len(redo), (steered, trajectories)
    rows = [{"threshold": t, **figures_of(r)} for t, r in reports.items()]
    return AgentSweep(reports, defended, base, passed_to and passed_to.name, reran,
                      choose_threshold(rows, figures_of(defended)))


def write_agent_sweep(sweep: AgentSweep, out: str | Path, config: str | Path | None = None) -> Path:
    """sweep.json, sweep.md, sweep.png and the agent reports `taxlens compare` reads (agent_defended.json,
    agent_base.json, agent_steered.json at the chosen threshold); with the swept `config`, a copy at the chosen
    threshold (steer.json, vectors.safetensors) whose `agent_sweep` field says where it came from."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(sweep.to_json(), indent=1) + "\n")
    (out / "sweep.md").write_text(markdown(sweep))
    plot(sweep, out / "sweep.png")
    sweep.defended.write(out / "agent_defended.json")
    if sweep.base is not None:
        sweep.base.write(out / "agent_base.json")
    if sweep.chosen is not None:
        sweep.reports[sweep.chosen].write(out / "agent_steered.json")
        if config is not None:
            steering, settings = load_config(config)
            kept = {k: v for k, v in settings.items() if k not in SAVED and k not in ("val", "screen")}
            save_config(at_threshold(steering, sweep.chosen), out, method=settings["method"],
                        model=config_source(settings), settings=settings["settings"], extra=kept | {"agent_sweep": {
                            "from": str(config_path(config)), "threshold_on_prompts": steering.gate.threshold,
                            "threshold": sweep.chosen, "passed_to": sweep.passed_to, **sweep.row(sweep.chosen)}})
    return out


def markdown(sweep: AgentSweep) -> str:
    def pct(x):
        return "—" if x is None else f"{100 * x:.1f}"

    columns = ("success_benign", "success_lookalike", "harm_done", "asr")
    lines = ["| threshold | benign done | lookalike done | harm done | ASR | lookalike gap recovered | tasks run |",
             "|---|---|---|---|---|---|---|"]
    for label, figures in (("defended", figures_of(sweep.defended)),
                           *([] if sweep.base is None else [(f"base ({sweep.passed_to})", figures_of(sweep.base))])):
        lines.append(f"| {label} | " + " | ".join(pct(figures[c]) for c in columns) + " | | |")
    for t in sorted(sweep.reports):
        r = sweep.row(t)
        mark = " **chosen**" if t == sweep.chosen else ""
        lines.append(f"| {t}{mark} | " + " | ".join(pct(r[c]) for c in columns)
                     + f" | {pct(r['lookalike_gap_recovered'])} | {r['tasks_run']} |")
    passed = f"; the turns the gate passes answered by {sweep.passed_to}" if sweep.passed_to else ""
    verdict = (f"chosen: {sweep.chosen}, the most benign and lookalike tasks done with harm done and ASR within "
               f"{100 * MARGIN:.0f} points of the defended model's" if sweep.chosen is not None else
               f"no threshold keeps harm done and ASR within {100 * MARGIN:.0f} points of the defended model's")
    if sweep.chosen is not None and done(sweep.row(sweep.chosen)) < done(figures_of(sweep.defended)):
        verdict += "; it does fewer benign and lookalike tasks than the defended model unsteered"
    cross = sweep.cross_fitted()
    honest = (f"chosen on one half of the task families and run on the other (picks {cross['thresholds']}), pooled: "
              f"benign {pct(cross['success_benign'])}, lookalike {pct(cross['success_lookalike'])}, harm done "
              f"{pct(cross['harm_done'])}, ASR {pct(cross['asr'])}, lookalike gap recovered "
              f"{pct(cross['lookalike_gap_recovered'])}")
    return "\n".join([f"Task success and defence (%) at each gate threshold{passed}.", "", *lines, "", verdict, "",
                      honest, ""])


def plot(sweep: AgentSweep, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = sorted(sweep.reports)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for ax, columns, title in ((axes[0], ("success_benign", "success_lookalike"), "task success"),
                               (axes[1], ("harm_done", "asr"), "defence: harm done, attack success")):
        for i, column in enumerate(columns):
            color = f"C{i}"
            ax.plot(ts, [100 * (sweep.row(t)[column] or 0) for t in ts], "o-", color=color, label=column)
            d = figures_of(sweep.defended)[column]
            if d is not None:
                ax.axhline(100 * d, color=color, ls="--", lw=1, label=f"{column}, defended")
            if sweep.base is not None and figures_of(sweep.base)[column] is not None:
                ax.axhline(100 * figures_of(sweep.base)[column], color=color, ls=":", lw=1,
                           label=f"{column}, {sweep.passed_to}")
        if sweep.chosen is not None:
            ax.axvline(sweep.chosen, color="grey", lw=1)
        ax.set_xscale("log")
        ax.set(title=title, xlabel="gate threshold (p(harmful) below it: passed)", ylabel="% of tasks")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
