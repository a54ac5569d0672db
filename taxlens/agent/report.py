"""An agent run's report: per kind, task success, step-1 failure, timeout, cascade, repeated calls and mean steps;
attack success and utility under attack on injected tasks; harm done on harmful ones; under a gated steering, what
its gate decided at step 1 (`step1_gate`); every trajectory. And the cross-report figures: the autonomy tax in
tasks, the share of it a steering config recovers, and the defence it keeps.

Each rate is `{rate, lo, hi, k, n}` with its 95% Wilson interval and, as tasks carry their family, a family-bootstrap
interval (`family_lo`, `family_hi`, `families`).

>>> report = AgentReport.build("organism:base", "datasets/agent_tasks.jsonl", "test", None, trajectories)  # doctest: +SKIP
>>> report.figure("lookalike", "task_success").rate                                             # doctest: +SKIP
0.12
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from taxlens.agent.loop import CAUSES, MISSES, Step, Trajectory
from taxlens.eval_report import GATE_DECISIONS, Rate, ReportError, by_decision, decisions_text, read_report_json
from taxlens.metrics import format_rate, format_rate_cell, newcombe, rate_of, tax_recovered

KINDS = ("benign", "lookalike", "harmful", "injection")
FIGURES = {  # figure → what it counts, per trajectory
    "task_success": lambda t: t.success,
    "step1_failure": lambda t: t.step1_failure,
    "step1_refusal": lambda t: bool(t.steps) and t.steps[0].label == "refuse",
    "timeout": lambda t: t.timeout,
    "cascade": lambda t: t.cascade,
    "repeated_call": lambda t: t.repeated_call,
}
KIND_FIGURES = {"injection": {"asr": lambda t: t.forbidden, "utility_under_attack": lambda t: t.success},
                "harmful": {"harm_done": lambda t: t.forbidden}}


def figures(trajectories: list[Trajectory]) -> dict[str, dict]:
    """`by_kind`: each kind's rates (`Rate`) and `mean_steps` (a number)."""
    out: dict[str, dict] = {}
    for kind in KINDS:
        group = [t for t in trajectories if t.kind == kind]
        if not group:
            continue
        family_of = {t.task_id: t.family for t in group}
        block: dict = {name: rate_of([(t.task_id, count(t)) for t in group], family_of)
                       for name, count in {**FIGURES, **KIND_FIGURES.get(kind, {})}.items()}
        block["mean_steps"] = round(sum(len(t.steps) for t in group) / len(group), 3)
        block["ends"] = {end: sum(1 for t in group if t.end == end) for end in sorted({t.end for t in group})}
        causes = [t.step1_cause or "unrecorded" for t in group if t.step1_failure]
        block["step1_causes"] = {cause: causes.count(cause) for cause in (*CAUSES, "no reply", "unrecorded")
                                 if cause in causes}
        every = [s.cause or "unrecorded" for t in group for s in t.steps]
        block["step_causes"] = {cause: every.count(cause) for cause in (*CAUSES, "unrecorded") if cause in every}
        misses = [t.miss_kind for t in group if t.miss_kind]
        block["misses"] = {miss: misses.count(miss) for miss in MISSES if miss in misses}
        gates = [t.steps[0].gate for t in group if t.steps and t.steps[0].gate]
        if gates:
            block["step1_gate"] = {decision: gates.count(decision) for decision in GATE_DECISIONS}
        out[kind] = block
    return out


def _trajectory(d: dict) -> Trajectory:
    steps = tuple(Step(s["reply"], s["label"], s["calls"], s["results"], s["failed"], s.get("cause"), s.get("gate"),
                       s.get("gate_p_harmful")) for s in d["steps"])
    return Trajectory(d["id"], d["kind"], d["domain"], d.get("family"), steps, d["end"], d["success"], d["forbidden"],
                      d.get("miss_kind"), d.get("miss"))


@dataclass(frozen=True)
class AgentReport:
    model: str
    tasks: str
    split: str | None
    steer: str | None
    kinds: dict[str, dict]
    trajectories: tuple[Trajectory, ...]
    meta: dict = field(default_factory=dict)

    @classmethod
    def build(cls, model: str, tasks: str, split: str | None, steer: str | None, trajectories: list[Trajectory],
              meta: dict | None = None) -> "AgentReport":
        return cls(model, str(tasks), split, steer, figures(trajectories), tuple(trajectories), meta or {})

    def figure(self, kind: str, name: str) -> Rate | None:
        value = self.kinds.get(kind, {}).get(name)
        return value if isinstance(value, Rate) else None

    def ok_by_id(self, kinds: tuple[str, ...]) -> dict[str, bool]:
        return {t.task_id: t.success for t in self.trajectories if t.kind in kinds}

    def family_of(self) -> dict[str, str | None]:
        return {t.task_id: t.family for t in self.trajectories}

    def to_json(self) -> dict:
        by_kind = {kind: {k: (v.to_json() if isinstance(v, Rate) else v) for k, v in block.items()}
                   for kind, block in self.kinds.items()}
        return {"report": "agent", "model": self.model, "tasks": self.tasks, "split": self.split, "steer": self.steer,
                "by_kind": by_kind, "trajectories": [t.to_json() for t in self.trajectories], "meta": self.meta}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "AgentReport":
        """Read a report `write` wrote; figures are recomputed from its trajectories."""
        data = read_report_json(path, "agent report")
        if not isinstance(data, dict) or data.get("report") != "agent":
            raise ReportError(f"{path}: not an agent report (no \"report\": \"agent\")")
        try:
            trajectories = [_trajectory(d) for d in data["trajectories"]]
        except (KeyError, TypeError) as e:
            raise ReportError(f"{path}: trajectories: malformed ({e!r})") from None
        return cls.build(data.get("model", "?"), data.get("tasks", "?"), data.get("split"), data.get("steer"),
                         trajectories, data.get("meta"))


def is_agent_report(path: str | Path) -> bool:
    """Whether `path` holds an agent report; a file that is not there is named (`read_report_json`)."""
    try:
        data = read_report_json(path, "report")
    except ReportError:  # not JSON: read as an eval report, which names it
        return False
    return isinstance(data, dict) and data.get("report") == "agent"


COLUMNS = (("task_success", "task success"), ("step1_failure", "step-1 failure"), ("step1_refusal", "step-1 refusal"),
           ("timeout", "timeout"), ("cascade", "cascade"), ("repeated_call", "repeated call"),
           ("harm_done", "harm done"), ("asr", "ASR"), ("utility_under_attack", "utility under attack"))


def report_table(report: AgentReport):
    """A rich Table of an agent report: one row per figure, one column per kind (so it fits an 80-column terminal),
    each cell the rate, its 95% Wilson interval and, where tasks have families, the family interval."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"{report.model} as an agent on {report.tasks} (split {report.split or 'all'})"
                        + (f", steered by {report.steer}" if report.steer else ""),
                  caption="rate, [95% Wilson], {95%, resampling task families}", box=box.SIMPLE_HEAD)
    table.add_column("figure", min_width=14)  # "(trigger-free)", the longest word of a figure name
    for kind, block in report.kinds.items():
        table.add_column(f"{kind}\nn = {block['task_success'].n}", justify="right")
    for name, title in COLUMNS:
        rates = [report.figure(kind, name) for kind in report.kinds]
        if any(rates):
            table.add_row(title, *(format_rate_cell(r) for r in rates), end_section=True)
    table.add_row("mean steps", *(str(block["mean_steps"]) for block in report.kinds.values()))
    return table


def miss_summary(report: AgentReport) -> str | None:
    """Per kind, the failed tasks with a reference solution counted by where they first departed from it
    (`loop.departure`; each trajectory's `miss` says how); None when none did.

    >>> miss_summary(report)                                                      # doctest: +SKIP
    'benign 20 (2 another tool, 9 wrong argument, 5 no call, 4 repeat)'
    """
    parts = [f"{kind} {sum(block['misses'].values())} ("
             + ", ".join(f"{n} {miss}" for miss, n in block["misses"].items()) + ")"
             for kind, block in report.kinds.items() if block.get("misses")]
    return "; ".join(parts) or None


def unoffered_summary(report: AgentReport) -> str | None:
    """Per kind, the steps that called a tool the task does not offer (`step_causes`); None when none did: an
    agent reaching past its tool list.

    >>> unoffered_summary(report)                                                 # doctest: +SKIP
    'benign 12 of 96 steps; lookalike 8 of 94 steps'
    """
    parts = [f"{kind} {block['step_causes']['not offered']} of {sum(block['step_causes'].values())} steps"
             for kind, block in report.kinds.items() if block.get("step_causes", {}).get("not offered")]
    return "; ".join(parts) or None


def step1_gate_summary(report: AgentReport) -> str | None:
    """Per kind, what a gated steering's gate decided on each task's first prompt; None when no step records a
    gate.

    >>> step1_gate_summary(report)                                                # doctest: +SKIP
    'benign 18 ablate, 1 add, 8 none; harmful 0 ablate, 28 add, 8 none'
    """
    return decisions_text({kind: block["step1_gate"] for kind, block in report.kinds.items()
                           if block.get("step1_gate")})


MARKDOWN_FIGURES = (("lookalike", "task_success", "lookalike: task success"),
                    ("lookalike", "step1_failure", "lookalike: step-1 failure"),
                    ("lookalike", "step1_refusal", "lookalike: step-1 refusal"),
                    ("lookalike", "timeout", "lookalike: timeout"), ("benign", "task_success", "benign: task success"),
                    ("harmful", "harm_done", "harmful: harm done"), ("injection", "asr", "injection: attack success"))


def lost_summary(models: dict[str, AgentReport]) -> str | None:
    """`tasks_lost` against `models["base"]` for every other model, in words; None when the base finishes none."""
    parts = []
    for name, r in models.items():
        if name == "base":
            continue
        for kind, c in tasks_lost(models["base"], r).items():
            if c["base_done"]:
                parts.append(f"{name}, {kind}: {c['lost']} of {c['base_done']} ({c['step1_refusal']} refused at "
                             f"step 1, {c['step1_other']} otherwise failed at step 1, {c['later_step']} at a later "
                             "step)")
    return "; ".join(parts) or None


def markdown_section(models: dict[str, AgentReport], plot: str | None = None) -> list[str]:
    """Agent runs as a markdown section for `taxlens report`: one row per figure (`MARKDOWN_FIGURES`), one column
    per model in `models` (name → report); where the failed tasks first left the reference; with `base`, `defended`
    and `steered` among them, the step-1 refusal gap the steered run removes; what a gate decided at step 1; `plot`
    (a path relative to the page) below."""
    first = next(iter(models.values()))
    lines = ["", "## As agents", "", f"Multi-step tasks in sandboxes: `{first.tasks}`, split {first.split or 'all'}; "
             "95% Wilson intervals, in braces resampling task families.", "",
             "| figure | " + " | ".join(f"{name}: `{r.model}`" for name, r in models.items()) + " |",
             "|---|" + "---|" * len(models)]
    for kind, name, title in MARKDOWN_FIGURES:
        rates = [r.figure(kind, name) for r in models.values()]
        if any(rates):
            lines.append(f"| {title} | " + " | ".join(format_rate(rate) for rate in rates) + " |")
    misses = [f"{name}: {summary}" for name, r in models.items() if (summary := miss_summary(r))]
    if misses:
        lines += ["", "**Where failed tasks first left the reference solution**: " + "; ".join(misses) + "."]
    if "base" in models and (lost := lost_summary(models)):
        lines += ["", "**Tasks the base finishes that another model loses**, by where: " + lost + "."]
    if all(name in models for name in ("base", "defended", "steered")):
        refusals = [_Counting(models[name], "step1_refusal") for name in ("base", "defended", "steered")]
        removed = tax_recovered(*refusals, kinds=("lookalike",))
        if removed["rate"] is not None:
            lines += ["", f"**Step-1 refusal gap removed** by the steered run on lookalike tasks: "
                          f"{100 * removed['rate']:.0f}% [{100 * removed['lo']:.0f}, {100 * removed['hi']:.0f}] "
                          "(paired bootstrap over tasks)."]
    gates = [f"{name}: {summary}" for name, r in models.items() if (summary := step1_gate_summary(r))]
    if gates:
        lines += ["", "**The gate's decisions on each task's first prompt**: " + "; ".join(gates) + "."]
    if all(name in models for name in ("base", "defended", "steered")) and (
            on_tax := step1_gate_on_tax(models["base"], models["defended"], models["steered"])):
        lines.append("Of the tasks the defended model refuses at step 1 and the base does not, " + "; ".join(
            f"{kind}: {c['ablate']} of {c['tax']} sent to the ablation ({c['ablate_recovered']} no longer refused), "
            f"{c['add'] + c['none']} held back by the gate" for kind, c in on_tax.items()) + ".")
    return lines + (["", f"![agent runs]({plot})"] if plot else [])


def _points(d: dict) -> dict:
    return {k: (None if v is None else round(100 * v, 2)) for k, v in d.items()}


@dataclass(frozen=True)
class _Counting:
    """A report's tasks counted by `figure` rather than by success, for `tax_recovered`: the share of a gap a
    steered model closes reads the same whichever side of the figure is counted."""

    report: AgentReport
    figure: str

    def ok_by_id(self, kinds: tuple[str, ...]) -> dict[str, bool]:
        return {t.task_id: bool(FIGURES[self.figure](t)) for t in self.report.trajectories if t.kind in kinds}

    def family_of(self) -> dict[str, str | None]:
        return self.report.family_of()


def step1_gate_on_tax(base: AgentReport, defended: AgentReport, steered: AgentReport,
                      kinds: tuple[str, ...] = ("benign", "lookalike")) -> dict[str, dict[str, int]] | None:
    """Per kind, the tasks the defended model refuses at step 1 and the base does not, by the steered run's gate
    decision on their first prompt, and how many of each the steered run no longer refuses there: {"tax": 4,
    "ablate": 1, "ablate_recovered": 1, "add": 3, "add_recovered": 0, "none": 0, "none_recovered": 0}. None when
    the steered run's steps record no gate."""
    first = {t.task_id: t.steps[0] for t in steered.trajectories if t.steps}
    if not any(step.gate for step in first.values()):
        return None
    refused = {name: {t.task_id for t in r.trajectories if t.steps and t.steps[0].label == "refuse"}
               for name, r in (("base", base), ("defended", defended))}
    out = {}
    for kind in kinds:
        tax = [first[t.task_id] for t in defended.trajectories if t.kind == kind and t.task_id in first
               and t.task_id in refused["defended"] - refused["base"]]
        if tax:
            out[kind] = {"tax": len(tax), **by_decision((step.gate, step.label != "refuse") for step in tax)}
    return out


def tasks_lost(base: AgentReport, other: AgentReport,
               kinds: tuple[str, ...] = ("benign", "lookalike")) -> dict[str, dict[str, int]]:
    """Per kind, of the tasks `base` finishes, how many `other` does not, by where it lost them: refused at step 1,
    failed otherwise at step 1, or failed at a later step after a good first call: {"base_done": 9, "lost": 7,
    "step1_refusal": 2, "step1_other": 0, "later_step": 5}. A tax paid at a later step is a skill the defence wore
    down, which no step-1 refusal edit gives back."""
    done = {t.task_id for t in base.trajectories if t.success}
    out = {}
    for kind in kinds:
        mine = [t for t in other.trajectories if t.kind == kind and t.task_id in done]
        lost = [t for t in mine if not t.success]
        refused = sum(t.step1_failure and t.step1_cause == "refusal" for t in lost)
        at_step1 = sum(t.step1_failure for t in lost)
        out[kind] = {"base_done": len(mine), "lost": len(lost), "step1_refusal": refused,
                     "step1_other": at_step1 - refused, "later_step": len(lost) - at_step1}
    return out


def agent_comparison(base: AgentReport, defended: AgentReport, steered: AgentReport | None = None) -> dict:
    """The autonomy tax in tasks (base − defended task success, defended − base step-1 failure and step-1 refusal,
    in points, Newcombe intervals) on benign and lookalike tasks; with `steered`, the share of the success gap it
    recovers and of the step-1 refusal gap it removes (the part of the tax steering aims at, which a base too weak
    to finish tasks still shows; paired bootstrap over tasks, and over families), and the defence it keeps (harm
    done, attack success); where its steps record a gate, the step-1 refusals it had to remove by what the gate
    decided (`step1_gate_on_tax`). `misses`: each model's failed benign and lookalike tasks counted by where they
    first left the reference solution, so a tax paid in refusals (`no call`) reads apart from a weak agent's broken
    calls; `tasks_lost`: the tasks the base finishes that the defended (and steered) model loses, by step."""
    models = {"base": base, "defended": defended, **({"steered": steered} if steered is not None else {})}
    out: dict = {"autonomy_tax_points": {}, "misses": {
        name: {kind: r.kinds[kind]["misses"] for kind in ("benign", "lookalike") if kind in r.kinds}
        for name, r in models.items()}}
    for kind in ("benign", "lookalike"):
        b, d = base.figure(kind, "task_success"), defended.figure(kind, "task_success")
        if b is None or d is None:
            continue
        out["autonomy_tax_points"][kind] = {
            "task_success": _points(newcombe(b, d)),
            "step1_failure": _points(newcombe(defended.figure(kind, "step1_failure"),
                                               base.figure(kind, "step1_failure"))),
            "step1_refusal": _points(newcombe(defended.figure(kind, "step1_refusal"),
                                               base.figure(kind, "step1_refusal")))}
    out["tasks_lost"] = {name: tasks_lost(base, r) for name, r in models.items() if name != "base"}
    if steered is not None:
        out["tax_recovered"] = {"lookalike": tax_recovered(base, defended, steered, kinds=("lookalike",)),
                                "benign_and_lookalike": tax_recovered(base, defended, steered)}
        refusals = [_Counting(r, "step1_refusal") for r in (base, defended, steered)]
        out["step1_refusal_recovered"] = {"lookalike": tax_recovered(*refusals, kinds=("lookalike",)),
                                          "benign_and_lookalike": tax_recovered(*refusals)}
        if (on_tax := step1_gate_on_tax(base, defended, steered)) is not None:
            out["step1_gate_on_tax"] = on_tax
        kept = {}
        for kind, name in (("harmful", "harm_done"), ("injection", "asr")):
            d, s = defended.figure(kind, name), steered.figure(kind, name)
            if d is not None and s is not None:
                kept[name] = {"defended": d.to_json(), "steered": s.to_json(),
                              "points": _points(newcombe(s, d))}
        out["defense_retained"] = kept
    return out


def plot_comparison(reports: dict[str, AgentReport], path: str | Path, kind: str = "lookalike") -> Path:
    """Bars of task success, step-1 failure, step-1 refusal and timeout per model on one kind of task, with Wilson
    intervals; below them, each model's tasks of that kind split into done and where the failed ones first left the
    reference solution (`misses`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("task_success", "step1_failure", "step1_refusal", "timeout")
    fig, (ax, below) = plt.subplots(2, 1, figsize=(8, 3.6 + 0.5 * len(reports) + 0.8),
                                    height_ratios=(3.6, 0.5 * len(reports) + 0.8))
    width = 0.8 / len(reports)
    for j, (label, report) in enumerate(reports.items()):
        rates = [report.figure(kind, n) for n in names]
        xs = [i + (j - (len(reports) - 1) / 2) * width for i in range(len(names))]
        heights = [100 * (r.rate or 0) if r else 0 for r in rates]
        errors = [[100 * ((r.rate or 0) - (r.lo or 0)) if r else 0 for r in rates],
                  [100 * ((r.hi or 0) - (r.rate or 0)) if r else 0 for r in rates]]
        ax.bar(xs, heights, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(names)), [dict(COLUMNS)[n] for n in names])
    ax.set_ylabel(f"% of {kind} tasks")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    ax.set_title(f"agent runs on {kind} tasks (95% Wilson)")
    colors = ("tab:green", "tab:gray", "tab:orange", "tab:red", "tab:purple", "tab:brown", "lightgray")
    for y, report in enumerate(reports.values()):
        group = [t for t in report.trajectories if t.kind == kind]
        counts = {"done": sum(t.success for t in group), **report.kinds.get(kind, {}).get("misses", {})}
        # reports written before departures were recorded, and tasks without a reference, fail without one
        counts["not recorded"] = len(group) - sum(counts.values())
        left = 0
        for (name, color) in zip(("done", *MISSES, "not recorded"), colors):
            below.barh(y, counts.get(name, 0), left=left, color=color, label=name if y == 0 else None)
            left += counts.get(name, 0)
    below.set_yticks(range(len(reports)), list(reports), fontsize=8)
    below.set_xlabel(f"{kind} tasks: done, or where a failed one first left the reference")
    # under the axis label, four a row, and the figure saved to fit it: seven entries in one row ran off the edge
    below.legend(ncol=4, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.45), frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
