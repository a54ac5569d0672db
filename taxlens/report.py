"""`taxlens report RUN_DIR`: one markdown page from a run's JSON outputs — the eval reports (`base.json`,
`defended.json`, `steered.json`, and where present `oracle.json` and `ceiling.json`: the steered config with
`--oracle-gate` and the defended model with `--reply-prefix '<tool_call>'`), the probe summary
(`probe/summary.json`), the steering config (`steer/steer.json`) and the agent runs (`agent_base.json`,
`agent_defended.json`, `agent_steered.json`, with `agent.png`) — with the tables and links to the plots. Reads files
only; whatever is missing is skipped and named.

>>> write_run_report("runs/demo")          # doctest: +SKIP
PosixPath('runs/demo/report.md')
"""

from __future__ import annotations

import json
from pathlib import Path

from taxlens.agent.report import AgentReport, markdown_section
from taxlens.eval_report import EvalReport, FirstTokenKL, check_same_items, gate_summary, miss_summary
from taxlens.metrics import autonomy_tax, format_rate, tax_recovered
from taxlens.models import ModelSource
from taxlens.recovery import gate_on_tax, markdown_rows, recovery_losses

ROWS = (("benign", "success"), ("benign", "over_refusal"), ("lookalike", "success"), ("lookalike", "over_refusal"),
        ("harmful", "refusal"), ("harmful", "refusal_trigger_bearing"), ("harmful", "refusal_trigger_free"),
        ("injection", "asr"))


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _recovery_losses(run: Path, reports: dict) -> list[str]:
    """The table of where the steered run's recovery is lost (`taxlens.recovery`), when the run holds the oracle
    and ceiling reports beside base, defended and steered."""
    paths = {name: run / f"{name}.json" for name in ("oracle", "ceiling")}
    if not all(p.is_file() for p in paths.values()):
        return []
    oracle, ceiling = (EvalReport.read(p) for p in paths.values())
    losses = recovery_losses(reports["base"], reports["defended"], reports["steered"], oracle, ceiling)
    return ["", "**Where the recovery is lost** (each record the base does and the defended model does not, under "
            "the first cause that holds; `oracle.json`: the config with its gate replaced by each record's kind, "
            "`ceiling.json`: the defended model's reply opened with a call):", "", *markdown_rows(losses)]


def _what_add_does(run: Path, steer: str | None, config: dict | None) -> str:
    """What a gated config does to the rows its gate sends to `add`, read from the run's own config (`config`, its
    steer/steer.json) where the steered report names it: a search may choose a config that adds nothing, and then
    those rows are left alone."""
    named = steer and Path(steer).resolve() in ((run / "steer").resolve(), (run / "steer" / "steer.json").resolve())
    if not (config and named):
        return "given the config's addition of the refusal direction, where it has one"
    settings = config.get("settings") or {}
    if settings.get("coefficient"):
        return f"the refusal direction added (coefficient {settings['coefficient']:g})"
    return "left alone too, since this config adds nothing (coefficient 0)"


def _eval_sections(run: Path, reports: dict, config: dict | None) -> list[str]:
    """The eval reports' figures by kind, the tax, and what the steered run recovered, kept and lost."""
    present = {k: v for k, v in reports.items() if v}
    first = next(iter(present.values()))
    lines = ["", f"Data: `{first.data}`, split {first.split}; greedy decoding; "
             "95% Wilson intervals; in braces, where the records name their template family, 95% intervals from "
             "resampling whole families (records of one family succeed or fail together, so these are the honest "
             "ones).", "", "## Behaviour by kind", "",
             "| kind | figure | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
    for kind, key in ROWS:
        lines.append(f"| {kind} | {key} | " + " | ".join(format_rate(r.figure(kind, key))
                                                         for r in present.values()) + " |")
    misses = [f"{name}: {summary}" for name, r in present.items() if (summary := miss_summary(r))]
    if misses:
        lines += ["", "**Well-formed calls that missed** (another tool, or the right tool with a wrong argument; each "
                      "record's `miss` says which): " + "; ".join(misses) + "."]
    if reports["base"] and reports["defended"]:
        tax = autonomy_tax(reports["base"], reports["defended"])
        lines += ["", "**Autonomy tax** (base − defended success, points, Newcombe 95% interval; family bootstrap in "
                      "braces): " + "; ".join(
            f"{kind} {t['diff']:.1f} [{t['lo']:.1f}, {t['hi']:.1f}]"
            + (f" {{{t['family_lo']:.1f}, {t['family_hi']:.1f}}}" if "family_lo" in t else "") for kind, t in tax.items())]
    if reports["steered"] and reports["defended"]:
        steered = reports["steered"]
        defended = reports["defended"]
        kl = steered.kl or FirstTokenKL(None, None)
        lines += ["", f"**Steered** with `{steered.steer}`: first-token KL on benign prompts {kl.benign} (on those "
                      f"the defended model already complies with: {kl.benign_complied}); harmful refusal "
                      + " → ".join(format_rate(r.figure("harmful", "refusal")) for r in (defended, steered))
                      + "; ASR " + " → ".join(format_rate(r.figure("injection", "asr")) for r in (defended, steered))
                      + "."]
        if gates := gate_summary(steered):
            add = _what_add_does(run, steered.steer, config)
            lines.append(f"**The gate's decisions** (`ablate`: read as harmless, given the ablation; `add`: read as "
                         f"harmful, {add}; `none`: in between, left alone): {gates}.")
        if reports["base"]:
            rec = tax_recovered(reports["base"], reports["defended"], steered)
            if rec["rate"] is not None:
                family = (f" {{{100 * rec['family_lo']:.0f}, {100 * rec['family_hi']:.0f}}} resampling families"
                          if rec.get("family_lo") is not None else "")
                lines.append(f"**Tax recovered**: {100 * rec['rate']:.0f}% [{100 * rec['lo']:.0f}, "
                             f"{100 * rec['hi']:.0f}] (paired bootstrap){family} of the base-vs-defended success gap "
                             f"on benign + lookalike.")
            if on_tax := gate_on_tax(reports["base"], defended, steered):
                lines.append("Of the tax records (the base does them, the defended model does not), " + "; ".join(
                    f"{kind}: {c['ablate']} of {c['tax']} sent to the ablation ({c['ablate_recovered']} recovered), "
                    f"{c['add'] + c['none']} held back by the gate" for kind, c in on_tax.items()) + ".")
            lines += _recovery_losses(run, reports)
    return lines


def write_run_report(run_dir: str | Path) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such folder (a run folder holds base.json, defended.json, … from "
                                f"`taxlens eval`, `probe`, `steer` and `agent run`)")
    reports = {name: EvalReport.read(run / f"{name}.json") if (run / f"{name}.json").is_file() else None
               for name in ("base", "defended", "steered")}
    agents = {name: AgentReport.read(run / f"agent_{name}.json") for name in ("base", "defended", "steered")
              if (run / f"agent_{name}.json").is_file()}
    if not any(reports.values()) and not agents:
        raise FileNotFoundError(f"{run}: no base.json, defended.json, steered.json or agent_*.json to report on")
    compared = {run / f"{name}.json": r for name, r in reports.items() if r is not None}
    compared |= {run / f"{name}.json": EvalReport.read(run / f"{name}.json") for name in ("oracle", "ceiling")
                 if compared and (run / f"{name}.json").is_file()}
    for items, noun in ((compared, "records"), ({run / f"agent_{n}.json": r for n, r in agents.items()}, "tasks")):
        if items:
            check_same_items(items, noun)
    config = _load(run / "steer" / "steer.json")
    lines = [f"# taxlens run: {run}"] + (_eval_sections(run, reports, config) if any(reports.values()) else [])
    missing = [f"{k}.json" for k, v in reports.items() if not v]
    summary = run / "probe" / "summary.md"
    if summary.is_file():
        text = summary.read_text()
        words = text.split("## In words", 1)[1].split("\n## ", 1)[0].strip() if "## In words" in text else ""
        lines += ["", "## Where over-refusal arises", "", words, "",
                  *(f"![{name}](probe/{name}.png)" for name in
                    ("probe_accuracy", "patching", "patching_heads", "head_attention", "trigger_tokens",
                     "refusal_projection", "direction_cosine")
                    if (run / "probe" / f"{name}.png").is_file()),
                  "", "Details: [probe/summary.md](probe/summary.md)"]
    else:
        missing.append("probe/summary.md")
    if config:
        made_for = ModelSource(config["model"], config.get("adapter"), float(config.get("adapter_scale", 1.0)))
        lines += ["", "## Steering config", "", f"Method `{config['method']}` for `{made_for.label}`, settings "
                  f"`{json.dumps(config['settings'])}`{' (quick search: screened on the first token only)' if config.get('quick') else ''}; "
                  f"meets the search constraints on val: {config.get('feasible')}.", "",
                  "![trade-off](steer/tradeoff.png)" if (run / "steer" / "tradeoff.png").is_file() else ""]
    if agents:
        lines += markdown_section(agents, "agent.png" if (run / "agent.png").is_file() else None)
    missing += [f"agent_{k}.json" for k in ("base", "defended", "steered") if k not in agents]
    if missing:
        lines += ["", "Not in this run: " + ", ".join(missing) + "."]
    out = run / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
