"""The agent loop driving models: the organism steered by a gate that decides every turn, the same loop over an
OpenAI-compatible endpoint, and the turns a gate passes handed to another model, here and behind a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taxlens.agent import AgentReport, EndpointPolicy, ModelPolicy, load_tasks, run_tasks
from taxlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "datasets" / "agent_tasks.jsonl"


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(TASKS)


def test_agent_run_drives_the_organism_steered_and_keeps_every_trajectory(tasks, tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main(["agent", "run", "--model", "organism:defended", "--steer", "organism:gated", "--tasks", str(TASKS),
                 "--split", "test", "--limit", "6", "--out", str(out)]) == 0
    report = AgentReport.read(out)
    assert report.steer == "organism:gated" and len(report.trajectories) == 6
    budget = {t.id: t.max_steps for t in tasks}
    for t in report.trajectories:
        assert 1 <= len(t.steps) <= budget[t.task_id]
        assert (t.end == "timeout") == (len(t.steps) == budget[t.task_id] and bool(t.steps[-1].calls))
        for step in t.steps:  # what was executed is what the reply called, and each call got its result
            assert len(step.results) == len(step.calls)
    # the gate decided afresh on every turn's prompt, and each step keeps what it read and decided
    steps = [s for t in report.trajectories for s in t.steps]
    assert all(s.gate in ("ablate", "add", "none") and 0.0 <= s.gate_p_harmful <= 1.0 for s in steps)
    p = {d: [s.gate_p_harmful for s in steps if s.gate == d] for d in ("ablate", "none", "add")}
    assert max(p["ablate"], default=0.0) < min(p["none"] + p["add"], default=1.0)
    assert max(p["none"], default=0.0) < min(p["add"], default=1.0)
    first = {kind: [t.steps[0].gate for t in report.trajectories if t.kind == kind] for kind in report.kinds}
    assert {kind: block["step1_gate"] for kind, block in report.kinds.items()} == {
        kind: {d: gates.count(d) for d in ("ablate", "add", "none")} for kind, gates in first.items()}
    printed = capsys.readouterr().out
    assert "task success" in printed and "the gate's decisions on each task's first prompt" in printed


def test_an_endpoint_runs_through_the_same_loop_as_a_model_loaded_here(tasks):
    from conftest import served_app

    from steering.serve import create_app
    from taxlens.models import load_model, load_serving_model

    picked = [t for t in tasks if t.split == "val" and t.kind == "benign"][:4]
    with served_app(create_app(load_serving_model("organism:base", device="cpu"))) as port:
        with EndpointPolicy(f"http://127.0.0.1:{port}/v1", "organism:base") as policy:
            remote = run_tasks(policy, picked, max_steps=3)
    assert policy._client.is_closed
    local = run_tasks(ModelPolicy(load_model("organism:base", device="cpu")), picked, max_steps=3)
    assert [t.steps[0].calls for t in remote] == [t.steps[0].calls for t in local]
    assert [t.end for t in remote] == [t.end for t in local]
    # a gated server's header puts its gate's decision on each step, as a gated model loaded here does
    from steering.config import load_config

    served, here = load_serving_model("organism:defended", device="cpu"), load_model("organism:defended", device="cpu")
    with served_app(create_app(served, steering=load_config("organism:gated", model=served)[0])) as port:
        remote = run_tasks(EndpointPolicy(f"http://127.0.0.1:{port}/v1", "organism:defended"), picked, max_steps=2)
    local = run_tasks(ModelPolicy(here, steering=load_config("organism:gated", model=here)[0]), picked, max_steps=2)
    assert [[s.gate for s in t.steps] for t in remote] == [[s.gate for s in t.steps] for t in local]
    assert all(s.gate for t in remote for s in t.steps)


def test_turns_a_gate_passes_are_answered_by_the_passed_to_model_and_the_rest_by_the_steered_one(tasks):
    import torch

    from steering.gate import HarmGate
    from steering.hooks import Steering
    from taxlens.models import load_model

    picked = [t for t in tasks if t.split == "val" and t.kind in ("benign", "lookalike")][::9][:6]
    base, defended = (load_model(f"organism:{m}", device="cpu") for m in ("base", "defended"))

    def gated(bias: float) -> Steering:  # a gate reading p(harmful) = sigmoid(bias) on every prompt
        gate = HarmGate(torch.zeros(defended.d_model), bias, layer=1, threshold=0.5, add_threshold=1.0)
        return Steering(direction=torch.ones(defended.d_model), gate=gate)

    def run(policy) -> list:
        return [(t.end, [(s.reply, s.calls) for s in t.steps]) for t in run_tasks(policy, picked, max_steps=3)]

    passed = run_tasks(ModelPolicy(defended, steering=gated(-20.0), passed_to=base), picked, max_steps=3)
    assert all(s.gate == "ablate" for t in passed for s in t.steps)
    assert [(t.end, [(s.reply, s.calls) for s in t.steps]) for t in passed] == run(ModelPolicy(base))
    kept = run_tasks(ModelPolicy(defended, steering=gated(5.0), passed_to=base), picked, max_steps=3)
    assert all(s.gate == "none" for t in kept for s in t.steps)
    assert [(t.end, [(s.reply, s.calls) for s in t.steps]) for t in kept] == run(ModelPolicy(defended))
    assert run(ModelPolicy(base)) != run(ModelPolicy(defended))  # the two models differ on these tasks
    with pytest.raises(ValueError, match="gated steering"):
        ModelPolicy(defended, passed_to=base)


def test_agent_run_hands_passed_turns_to_another_model_at_a_chosen_threshold(tmp_path, capsys):
    run = ["agent", "run", "--model", "organism:defended", "--tasks", "datasets/agent_tasks.jsonl", "--split", "val",
           "--limit", "2", "--max-steps", "2", "--out", str(tmp_path / "a.json")]
    for flags in (["--passed-to", "organism:base"], ["--gate-threshold", "0.5"]):
        assert main(run + flags) == 2
        assert f"{flags[0]} acts on what a gate passes" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()
    assert main(run + ["--steer", "organism:gated", "--gate-threshold", "1.5"]) == 2
    assert "threshold 1.5 is not a probability" in capsys.readouterr().err
    assert main(run + ["--steer", "organism:gated", "--passed-to", "organism:base", "--gate-threshold", "0.4"]) == 0
    meta = json.loads((tmp_path / "a.json").read_text())["meta"]
    assert meta["passed_to"] == "organism:base" and meta["gate_threshold"] == 0.4


def test_a_served_gate_hands_what_it_passes_to_the_passed_to_model(tasks):
    import torch
    from conftest import served_app

    from steering.gate import HarmGate
    from steering.hooks import Steering
    from steering.serve import create_app
    from taxlens.models import load_model, load_serving_model

    picked = [t for t in tasks if t.split == "val" and t.kind == "lookalike"][:4]
    served = load_serving_model("organism:defended", device="cpu")
    gate = HarmGate(torch.zeros(served.d_model), -20.0, layer=1, threshold=0.5)  # passes every prompt
    steering = Steering(direction=torch.ones(served.d_model), gate=gate)
    with served_app(create_app(served, steering=steering,
                               passed_to=load_serving_model("organism:base", device="cpu"))) as port:
        remote = run_tasks(EndpointPolicy(f"http://127.0.0.1:{port}/v1", "organism:defended"), picked, max_steps=3)
    local = run_tasks(ModelPolicy(load_model("organism:base", device="cpu")), picked, max_steps=3)
    assert [[s.calls for s in t.steps] for t in remote] == [[s.calls for s in t.steps] for t in local]
    assert [t.end for t in remote] == [t.end for t in local]
    assert all(s.gate == "ablate" for t in remote for s in t.steps)
    defended = run_tasks(ModelPolicy(load_model("organism:defended", device="cpu")), picked, max_steps=3)
    assert [[s.reply for s in t.steps] for t in defended] != [[s.reply for s in t.steps] for t in local]
    with pytest.raises(ValueError, match="gated steering"):
        create_app(served, passed_to=served)
