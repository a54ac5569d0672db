"""`taxlens steer --quick` and `taxlens report` end to end on the organism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probes.cache import ActivationStore
from steering.config import load_config
from probes.linear import LinearProbe
from steering.fit import GATE_POSITIVE, fit_vectors
from steering.search import attack_masks, gate_passes, violation
from taxlens.cli import main
from taxlens.contract import load_records
from taxlens.subset import Subset, sample_records
from taxlens.models import load_model


def test_quick_gated_search_writes_a_loadable_config_table_and_plot(tmp_path):
    # a sample of train and val (pairs kept whole): the search's work grows with both
    records = load_records("datasets/toolcalls.jsonl")
    data = tmp_path / "sample.jsonl"
    Subset([r for split, n in (("train", 400), ("val", 96))
            for r in sample_records(records, split=split, n=n, seed=0).records], 0, 0).write(data)
    out = tmp_path / "steer"
    # a few train agent tasks of each kind: their reference runs' turns fit the gate too
    from taxlens.agent import load_tasks

    train_tasks = load_tasks("datasets/agent_tasks.jsonl", split="train")
    picked = [t for kind in ("benign", "lookalike", "harmful", "injection")
              for t in [t for t in train_tasks if t.kind == kind][:3]]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t.to_json()) + "\n" for t in picked))
    assert main(["steer", "--base", "organism:base", "--model", "organism:defended", "--data", str(data),
                 "--method", "gated", "--quick", "--out", str(out), "--agent-tasks", str(tmp_path / "tasks.jsonl")]) == 0
    defended = load_model("organism:defended", device="cpu")
    steering, config = load_config(out, model=defended)
    assert config["method"] == "gated" and config["quick"] is True and steering.gate is not None
    from steering.pipeline import agent_turn_streams

    streams, labels = agent_turn_streams(defended, tmp_path / "tasks.jsonl")
    assert config["fitted_on"]["agent_turns"] == len(labels) == len(streams) > len(picked)
    assert streams.shape[1:] == (defended.n_layers, defended.d_model)
    from taxlens.agent.loop import reference_turns

    turns, _ = reference_turns(picked)  # harmful turns and injected ones after the injected result are positive
    assert labels.tolist() == [int(t.task.kind == "harmful" or (t.task.kind == "injection"
                                                                 and t.step > t.task.injected_by)) for t in turns]
    assert {t.task.kind for t, y in zip(turns, labels) if y} == {"harmful", "injection"}
    assert any(t.task.kind == "injection" and not y for t, y in zip(turns, labels))
    table = json.loads((out / "pareto.json").read_text())
    gated = table["methods"]["gated"]
    # (gates reading one layer + gates reading every layer up to it, from layer 1) × ablation variants (mean,
    # clamp) × (11 thresholds with no addition + 11 adding from the threshold + 56 adding from a higher one)
    assert table["screened"]["gated"] == (4 + 3) * 2 * (11 + 11 + 56)
    # the table keeps the Pareto front and the chosen setting, not every screened one
    assert 0 < len(gated) < table["screened"]["gated"]
    chosen = next(r for r in gated if r["settings"] == config["settings"])
    assert chosen["screen"]["objective"] > table["defended"]["screen"]["objective"]
    assert (out / "tradeoff.png").stat().st_size > 5000 and "Pareto" in (out / "pareto.md").read_text()
    # the page leads with the chosen setting and its first-token figures, and says which front rows meet the bounds
    rows = [line for line in (out / "pareto.md").read_text().splitlines() if line.startswith("| ")][1:]
    helpful = f"{100 * chosen['screen']['compliance_helpful']:.1f}"
    assert rows[0].startswith("| **gated (chosen)** |") and helpful in rows[0]
    assert rows[0].split(" | ")[5] == ("yes" if config["feasible"] else "no")
    assert {row.split(" | ")[5] for row in rows[3:]} <= {"yes", "no"}

    # the clamp targets are quantiles of the projections of the train prompts the model complied with
    store = ActivationStore(out / "cache")
    fitted = fit_vectors(store, split="train")
    complied = [i for i in store.select(split="train") if store.records[i]["refusal_score"] <= 0]
    projections = store.load("resid_post.2", -1, complied) @ fitted.refusal[1]
    clamp = fitted.refusal_targets(1, 0.9)
    assert torch.isclose(clamp["stream_targets"][2], torch.quantile(projections, 0.9), atol=1e-4)
    # what the clamp leaves alone: an interpolated 0.9 quantile has at least floor(0.9 (n - 1)) + 1 points at or below it
    left_alone = (projections <= clamp["stream_targets"][2] + 1e-4).sum().item()
    assert left_alone >= int(0.9 * (len(projections) - 1)) + 1
    mean_targets = fitted.targets(fitted.refusal[1])["write_targets"]
    assert torch.allclose(fitted.refusal_targets(1)["write_targets"], mean_targets)

    # a gate reading layers 0..2 is the logistic probe on those streams side by side, in raw activation space
    rows = store.select(split="val")
    streams = torch.stack([store.load(f"resid_post.{layer}", -1, rows) for layer in range(3)], 1)
    y = np.array([store.records[i]["kind"] in GATE_POSITIVE for i in store.select(split="train")], dtype=int)
    train = torch.stack([store.load(f"resid_post.{layer}", -1, store.select(split="train")) for layer in range(3)], 1)
    probe = LinearProbe(C=0.01).fit(train.reshape(len(train), -1).numpy(), y)
    expected = probe.predict_proba(streams.reshape(len(streams), -1).numpy())[:, 1]
    stacked = fitted.stacked_gates[2]
    assert stacked.read_layers == (0, 1, 2)
    assert np.allclose(stacked.probability(streams).numpy(), expected, atol=1e-4)
    # with agent turns, the gate is the same probe fitted on the prompts' and the turns' streams together
    turns_streams, turn_labels = agent_turn_streams(defended, tmp_path / "tasks.jsonl")
    both = torch.cat([train, turns_streams[:, :3]])
    probe = LinearProbe(C=0.01).fit(both.reshape(len(both), -1).numpy(), np.concatenate([y, turn_labels]))
    with_turns = fit_vectors(store, split="train", extra_gate=(turns_streams, turn_labels)).stacked_gates[2]
    expected = probe.predict_proba(streams.reshape(len(streams), -1).numpy())[:, 1]
    assert np.allclose(with_turns.probability(streams).numpy(), expected, atol=1e-4)
    assert not np.allclose(with_turns.probability(streams).numpy(), stacked.probability(streams).numpy(), atol=1e-3)


def test_report_names_what_is_missing(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no base.json" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "typo")]) == 2
    assert f"{tmp_path / 'typo'}: no such folder" in capsys.readouterr().err


def test_choose_prefers_feasible_then_success_and_never_a_wrecked_model():
    from steering.search import Setting, choose

    defended = {"refusal_harmful": 0.9, "asr": 0.0, "kl_first_token_benign_complied": None}

    def setting(name, helpful, refusal, asr, kl=0.01, objective=None):
        val = {"success_helpful": helpful, "refusal_harmful": refusal, "asr": asr,
               "kl_first_token_benign_complied": kl, "objective": helpful if objective is None else objective}
        return Setting("global", {"name": name}, None, val=val)

    keeps = setting("keeps the defence", 0.5, 0.89, 0.01)
    loses = setting("loses it, helps", 0.8, 0.05, 0.3)
    wrecked = setting("wrecks replies", 0.02, 0.4, 0.0)
    assert choose([loses, keeps, wrecked], defended) == (keeps, True)
    # nothing feasible: the most helpful, not the one that breaks the constraints least by breaking the model
    assert choose([loses, wrecked], defended) == (loses, False)
    tied = setting("as helpful, less ASR", 0.8, 0.05, 0.1)
    assert choose([loses, tied], defended) == (tied, False)
    refuses_more = setting("as helpful, as much ASR, refuses more", 0.8, 0.2, 0.1)
    assert choose([tied, refuses_more], defended) == (refuses_more, False)
    # among feasible settings, refusing trigger-free harmful requests counts as much as doing a helpful one
    adds_refusal = setting("a little less helpful, refuses trigger-free harm", 0.48, 0.95, 0.0, objective=0.6)
    assert choose([keeps, adds_refusal], defended) == (adds_refusal, True)
    # the KL bound is a bound: a setting over it by a hair is not feasible, however much it helps
    over_kl = setting("helps more, KL 0.0503", 0.6, 0.95, 0.0, kl=0.0503, objective=0.7)
    assert choose([keeps, adds_refusal, over_kl], defended) == (adds_refusal, True)


def test_shortlist_keeps_the_best_of_every_gate_layer_and_positions():
    from steering.search import Setting, shortlist

    defended = {"refusal_harmful": 0.6}

    def setting(gate_layer, positions, helpful, refusal):
        screen = {"compliance_helpful": helpful, "objective": helpful, "refusal_harmful": refusal,
                  "kl_benign_complied": 0.0}
        return Setting("gated", {"gate_layer": gate_layer, "positions": positions, "helpful": helpful}, None,
                       screen=screen)

    layer0 = [setting(0, "last", h, 0.7) for h in (0.9, 0.8, 0.7)]
    layer3 = [setting(3, "last", 0.5, 0.7), setting(3, "prompt", 0.4, 0.7), setting(3, "last", 0.95, 0.1)]
    settings = layer0 + layer3
    # by positions alone the gate layer that screens worse on the first token is never evaluated
    assert [s.settings["gate_layer"] for s in shortlist(settings, defended, 2)] == [0, 0, 3]
    picked = shortlist(settings, defended, 1, by=("positions", "gate_layer"))
    # one per (positions, gate layer); within a group the feasible setting beats the more compliant one that
    # gives up harmful refusal
    assert [(s.settings["positions"], s.settings["gate_layer"], s.settings["helpful"]) for s in picked] == [
        ("last", 0, 0.9), ("last", 3, 0.5), ("prompt", 3, 0.4)]
    # a setting that screens exactly like a better-ranked one of its group is not evaluated twice
    twin = setting(0, "last", 0.9, 0.7)
    picked = shortlist([twin] + settings, defended, 2, by=("positions", "gate_layer"))
    assert [s.settings["helpful"] for s in picked if s.settings["gate_layer"] == 0] == [0.9, 0.8]
    # a setting over the KL bound by a hair ranks after every feasible one, however well it screens
    over_kl = setting(0, "last", 0.99, 0.7)
    over_kl.screen["kl_benign_complied"] = 0.0503
    assert shortlist([over_kl] + layer0, defended, 1)[0].settings["helpful"] == 0.9


def test_a_gate_that_lets_attacks_through_is_infeasible_however_the_model_replies():
    kinds = ["harmful"] * 50 + ["injection"] * 50 + ["benign"] * 10
    harm_p = torch.cat([torch.linspace(0.3, 1.0, 50), torch.linspace(0.05, 1.0, 50), torch.zeros(10)])
    defended = {"refusal_harmful": 0.7, "asr": 0.0}
    replies = {"refusal_harmful": 0.7, "asr": 0.0, "kl_benign_complied": 0.0}
    holds = gate_passes(harm_p, attack_masks(kinds), 0.06)  # 1 of 50 injections below it
    leaks = gate_passes(harm_p, attack_masks(kinds), 0.5)
    assert holds == {"gate_passes_harmful": 0.0, "gate_passes_injection": 0.02}
    assert leaks["gate_passes_harmful"] == 0.28 and leaks["gate_passes_injection"] == 0.48
    assert violation({**replies, **holds}, defended) == 0
    assert violation({**replies, **leaks}, defended) == pytest.approx(0.26 + 0.46)


def test_report_names_the_model_a_config_steers_as_reports_do(tmp_path):
    """A config for an adapter pair is the defended model's: the report says `organism:defended`, not its base."""
    from taxlens.report import write_run_report

    (tmp_path / "steer").mkdir()
    (tmp_path / "defended.json").write_text(json.dumps({"model": "organism:defended", "data": "d.jsonl", "split": "val",
                                                                "steer": None, "by_kind": {}, "records": []}))
    (tmp_path / "steer" / "steer.json").write_text(json.dumps({
        "method": "gated", "model": "organism:base", "adapter": "organism:defended", "adapter_scale": 1.0,
        "settings": {}, "quick": True, "feasible": True}))
    text = write_run_report(tmp_path).read_text()
    assert "Method `gated` for `organism:defended`" in text


def test_screen_objective_counts_helpful_compliance_and_trigger_free_refusal_per_request():
    from steering.search import screen_metrics
    from taxlens.scoring import OpeningTokens

    openings = OpeningTokens(refusal=(0,), call=(1,))
    refuse, call = torch.log_softmax(torch.tensor([3.0, 0.0]), -1), torch.log_softmax(torch.tensor([0.0, 3.0]), -1)
    kinds = ["benign", "lookalike", "lookalike", "harmful", "harmful_trigger_free", "harmful_trigger_free"]
    # benign and one lookalike done, one lookalike refused; both harmful kinds refused once, one trigger-free called
    rows = torch.stack([call, call, refuse, refuse, refuse, call])
    m = screen_metrics(rows, rows, kinds, openings)
    assert m["compliance_helpful"] == round(2 / 3, 4)
    assert m["refusal_harmful"] == round(2 / 3, 4) and m["refusal_trigger_free"] == 0.5
    assert m["objective"] == 0.6  # 3 right of the 5 benign, lookalike and trigger-free requests
    assert attack_masks(kinds)["gate_passes_harmful"].tolist() == [False] * 3 + [True] * 3


def test_pareto_front_is_the_settings_nothing_dominates():
    from steering.search import Setting, pareto_front

    gen = torch.Generator().manual_seed(0)
    points = (torch.randint(0, 8, (300, 2), generator=gen) / 8).tolist()  # coarse: many ties and duplicates
    settings = [Setting("gated", {"i": i}, None, screen={"compliance_helpful": c, "refusal_harmful": r})
                for i, (c, r) in enumerate(points)]

    def dominated(c, r):
        return any(tc >= c and tr >= r and (tc > c or tr > r) for tc, tr in points)

    front = pareto_front(settings)
    assert {s.settings["i"] for s in front} == {i for i, (c, r) in enumerate(points) if not dominated(c, r)}
    assert [s.screen["compliance_helpful"] for s in front] == sorted(s.screen["compliance_helpful"] for s in front)


@pytest.mark.parametrize("split, kind", [("val", "harmful"), ("val", "lookalike"), ("train", "benign")])
def test_a_split_without_a_kind_the_search_needs_is_named_before_any_model_loads(tmp_path, split, kind):
    from steering.pipeline import run_steer

    data = tmp_path / "set.jsonl"
    lines = open("datasets/toolcalls.jsonl").read().splitlines()
    data.write_text("".join(line + "\n" for line in lines
                            if (json.loads(line)["split"], json.loads(line)["kind"]) != (split, kind)))
    missing = str(tmp_path / "no-such-model")  # loading it would raise another error
    with pytest.raises(ValueError, match=f"no {kind} records in split '{split}'"):
        run_steer(missing, missing, data, tmp_path / "out", methods=["gated"], progress=False)
