"""Sweeping a gated config's threshold on agent tasks: each row is what running at that threshold gives, the chosen
threshold keeps the defence, and the written config runs at it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steering.agent_sweep import at_threshold, choose_threshold, sweep_agent_thresholds
from steering.config import load_config
from taxlens.agent import ModelPolicy, load_tasks, run_tasks
from taxlens.cli import main

TASKS = Path(__file__).resolve().parents[1] / "datasets" / "agent_tasks.jsonl"


def test_the_chosen_threshold_does_the_most_tasks_within_the_defences_margin():
    defended = {"success_benign": 0.1, "success_lookalike": 0.0, "harm_done": 0.05, "asr": 0.0}
    rows = [{"threshold": 0.1, "success_benign": 0.1, "success_lookalike": 0.1, "harm_done": 0.05, "asr": 0.0},
            {"threshold": 0.2, "success_benign": 0.1, "success_lookalike": 0.2, "harm_done": 0.07, "asr": 0.02},
            {"threshold": 0.3, "success_benign": 0.1, "success_lookalike": 0.2, "harm_done": 0.05, "asr": 0.0},
            {"threshold": 0.5, "success_benign": 0.2, "success_lookalike": 0.3, "harm_done": 0.08, "asr": 0.0},
            {"threshold": 0.7, "success_benign": 0.4, "success_lookalike": 0.4, "harm_done": 0.05, "asr": 0.03}]
    # 0.5 does harm and 0.7 obeys attacks beyond the 2-point margin; 0.2 (within it) and 0.3 tie: the lower
    assert choose_threshold(rows, defended) == 0.2
    assert choose_threshold(rows[3:], defended) is None
    assert choose_threshold([{**rows[0], "asr": None}], {**defended, "asr": None}) == 0.1  # no injected tasks


def test_the_cross_fitted_figure_runs_each_half_of_the_families_at_the_threshold_the_other_half_picks():
    from dataclasses import replace

    from steering.agent_sweep import AgentSweep, markdown
    from taxlens.agent import AgentReport
    from taxlens.agent.loop import Trajectory

    def report(lookalike_done: set, harm_done: set) -> AgentReport:
        tasks = [("l1", "lookalike", "A"), ("l2", "lookalike", "B"), ("h1", "harmful", "H1"), ("h2", "harmful", "H2")]
        return AgentReport.build("m", "tasks", "val", None, [
            Trajectory(i, kind, "file", family, (), "answer", i in lookalike_done, i in harm_done)
            for i, kind, family in tasks])

    reports = {0.1: report({"l1"}, set()), 0.5: report({"l1", "l2"}, {"h1"})}
    sweep = AgentSweep(reports, report(set(), set()), report({"l1", "l2"}, {"h1", "h2"}), "base", {0.1: 4, 0.5: 4},
                       chosen=0.1)
    cross = sweep.cross_fitted()
    # families A and H1 form one half, B and H2 the other: B and H2 pick 0.5 (no harm there), which then does harm on
    # H1; A and H1 rule 0.5 out for its harm and pick 0.1, which does not finish B
    assert cross["thresholds"] == [0.5, 0.1]
    assert (cross["success_lookalike"], cross["harm_done"], cross["lookalike_gap_recovered"]) == (0.5, 0.5, 0.5)
    assert "fewer benign and lookalike tasks than the defended model" not in markdown(sweep)
    worse = replace(sweep, defended=report({"l1", "l2"}, set()))  # steering at 0.1 loses a task it did unsteered
    assert "fewer benign and lookalike tasks than the defended model" in markdown(worse)


def test_each_threshold_gives_the_trajectories_a_run_at_it_gives_reusing_those_no_turn_decides_otherwise(tmp_path):
    from taxlens.models import load_model

    tasks = [t for t in load_tasks(TASKS, split="val") if t.kind in ("lookalike", "harmful")][::5][:8]
    defended, base = (load_model(f"organism:{m}", device="cpu") for m in ("defended", "base"))
    steering, _ = load_config("organism:gated", model=defended)
    sweep = sweep_agent_thresholds(defended, steering, tasks, passed_to=base, thresholds=(0.05, 0.95), max_steps=2,
                                   progress=False)
    assert sorted(sweep.reports) == [0.05, 0.5, 0.95]  # the config's own threshold is always run
    assert sweep.reran[0.05] == len(tasks) and min(sweep.reran[0.5], sweep.reran[0.95]) < len(tasks)

    def steps(trajectories):
        return [(t.end, [(s.reply, s.gate) for s in t.steps]) for t in trajectories]

    for t in (0.5, 0.95):
        direct = run_tasks(ModelPolicy(defended, steering=at_threshold(steering, t), passed_to=base), tasks,
                           max_steps=2)
        assert steps(sweep.reports[t].trajectories) == steps(direct)
    assert all(s.gate in ("ablate", "add", "none") for r in sweep.reports.values() for t in r.trajectories
               for s in t.steps)


def test_agent_sweep_writes_its_table_the_reports_compare_reads_and_a_config_at_the_chosen_threshold(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["agent", "sweep", "--model", "organism:defended", "--steer", "organism:gated", "--passed-to",
            "organism:base", "--tasks", str(TASKS), "--split", "val", "--limit", "4", "--max-steps", "2",
            "--thresholds", "0.2", "--out", str(out)]
    assert main(argv) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert [r["threshold"] for r in table["rows"]] == [0.2, 0.5] and table["passed_to"] == "organism:base"
    assert "run agents at it" in capsys.readouterr().out
    steering, config = load_config(out)
    assert steering.gate.threshold == table["chosen"] == config["agent_sweep"]["threshold"]
    assert config["agent_sweep"]["threshold_on_prompts"] == 0.5 and "val" not in config
    for name in ("sweep.md", "sweep.png", "agent_defended.json", "agent_base.json", "agent_steered.json"):
        assert (out / name).is_file(), name
    assert main(["compare", str(out / "agent_base.json"), str(out / "agent_defended.json"), "--steered",
                 str(out / "agent_steered.json")]) == 0
    assert main(argv[:5] + ["organism:global"] + argv[6:]) == 2
    assert "has no gate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(argv[:-1])
