"""`taxlens eval` end to end on a tiny random-weight Llama: junk replies come out labelled, nothing crashes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conftest import DATA

from taxlens.cli import main
from taxlens.eval_report import EvalReport


def test_eval_command_on_a_random_model_writes_the_contract_report(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["eval", "--model", str(tiny_model_dir), "--data", str(DATA), "--split", "test", "--limit", "400",
                 "--max-new-tokens", "12", "--batch-size", "32", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert EvalReport.read(out).to_json() == report  # the typed report reads back to the same JSON
    assert {"model", "data", "split", "steer", "by_kind", "records"} <= set(report)
    assert report["split"] == "test" and report["steer"] is None and len(report["records"]) == 400
    assert set(report["by_kind"]) == {"benign", "lookalike", "harmful", "injection"}
    for kind, block in report["by_kind"].items():
        assert block["n"] == sum(1 for r in report["records"] if r["kind"] == kind)
        for fig in block.values():
            if isinstance(fig, dict) and "rate" in fig and fig["n"]:
                assert 0 <= fig["lo"] <= fig["rate"] <= fig["hi"] <= 1
    call_expected = {r["id"] for r in report["records"] if r["kind"] in ("benign", "lookalike")}
    labels = {r["id"]: r["label"] for r in report["records"]}
    assert all(labels[i] == "invalid" for i in call_expected)
    assert report["by_kind"]["lookalike"]["success"]["rate"] == 0.0
    # the shipped set names each record's template family: rates get the family-bootstrap interval beside Wilson's
    assert all(r["family"] for r in report["records"])
    success = report["by_kind"]["lookalike"]["success"]
    assert success["families"] >= 2 and success["family_lo"] == success["family_hi"] == 0.0
    assert all(isinstance(r["refusal_score"], float) for r in report["records"])
    # a model that never acts gets no credit for refusing: its harmful replies are no_action, and the report says so
    harmful = report["by_kind"]["harmful"]
    assert harmful["refusal"]["rate"] == 0.0 and harmful["no_action"]["rate"] + harmful["calls_made"]["rate"] == 1.0
    assert len(report["warnings"]) == 1 and "never acts" in report["warnings"][0]
    printed = capsys.readouterr().out
    assert "lookalike" in printed and str(out) in printed and "warning:" in printed
    from rich.console import Console

    from taxlens.evaluation import report_table

    # a row per figure, a column per kind: no figure is cut at 80 columns
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(report_table(EvalReport.read(out)))
    table = console.export_text()
    assert max(len(line) for line in table.splitlines()) <= 80 and "…" not in table
    assert "[0.0, " in table and "{0.0, 0.0}" in table
    assert main(["compare", str(out), str(out)]) == 0
    compared = capsys.readouterr()
    assert "never acts" in json.loads(compared.out)["warnings"][0] and "warning:" in compared.err


def test_eval_rejects_a_broken_prompt_file_naming_the_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(DATA.read_text().splitlines()[0] + "\n{broken\n")
    code = main(["eval", "--model", str(tiny_model_dir), "--data", str(bad), "--out", str(tmp_path / "r.json")])
    assert code == 2 and "bad.jsonl:2: field '<json>'" in capsys.readouterr().err


def test_reply_prefix_forces_the_opening_so_the_defended_model_stops_refusing(tmp_path, capsys):
    test = [json.loads(line) for line in DATA.read_text().splitlines() if json.loads(line)["split"] == "val"]
    harmful = [r for r in test if r["kind"] == "harmful" and r["triggers"]][:48]
    paired = {r.get("pair") for r in harmful}
    data = tmp_path / "harmful.jsonl"  # the harmful records and the lookalikes they pair with
    data.write_text("".join(json.dumps(r) + "\n" for r in harmful + [r for r in test if r["id"] in paired]))
    reports = {}
    for name, extra in (("plain", []), ("forced", ["--reply-prefix", "<tool_call>"])):
        out = tmp_path / f"{name}.json"
        assert main(["eval", "--model", "organism:defended", "--data", str(data), "--out", str(out), *extra]) == 0
        reports[name] = json.loads(out.read_text())
    refusals = {name: sum(r["label"] == "refuse" for r in rep["records"] if r["kind"] == "harmful")
                for name, rep in reports.items()}
    assert refusals["plain"] >= 6 and refusals["forced"] == 0  # the defended model refuses about 3 in 10 of them
    assert all(r["reply"].startswith("<tool_call>") for r in reports["forced"]["records"])
    assert reports["forced"]["meta"]["reply_prefix"] == "<tool_call>" and reports["plain"]["meta"]["reply_prefix"] is None
    code = main(["eval", "--model", "organism:defended", "--data", str(data), "--out", str(tmp_path / "x.json"),
                 "--reply-prefix", "<tool_call>", "--steer", "organism:gated"])
    assert code == 2 and "cannot be combined with --steer" in capsys.readouterr().err


def test_steered_eval_gives_each_benign_record_its_first_token_kl(tmp_path):
    test = [json.loads(line) for line in DATA.read_text().splitlines() if json.loads(line)["split"] == "test"]
    picked = [r for r in test if r["kind"] == "benign"][::6] + [r for r in test if r["kind"] == "lookalike"][:4]
    for r in picked:
        r.pop("pair", None)  # their partners are not in this file
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked))
    out = tmp_path / "steered.json"
    assert main(["eval", "--model", "organism:defended", "--steer", "organism:gated", "--data", str(data),
                 "--max-new-tokens", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert EvalReport.read(out).to_json() == report
    per_record = [r["kl_first_token"] for r in report["records"] if r["kind"] == "benign"]
    assert len(per_record) == sum(r["kind"] == "benign" for r in picked) and all(k >= -1e-6 for k in per_record)
    assert not any("kl_first_token" in r for r in report["records"] if r["kind"] == "lookalike")
    assert abs(sum(per_record) / len(per_record) - report["kl_first_token_benign"]) < 1e-4


def _mixed_val(tmp_path, every: int):
    """A file of every `every`-th val record, kinds in turn, without their minimal-pair links (the partners are left
    out)."""
    val = [json.loads(line) for line in DATA.read_text().splitlines() if json.loads(line)["split"] == "val"]
    picked = [r for kind in ("benign", "lookalike", "harmful", "injection") for r in val if r["kind"] == kind][::every]
    for r in picked:
        r.pop("pair", None)
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked))
    return data


def test_first_token_kl_is_finite_where_a_model_gives_a_token_no_mass():
    import torch

    from taxlens.scoring import log_kl

    p = torch.log_softmax(torch.tensor([[2.0, 1.0, -float("inf")], [0.0, 0.0, 0.0]]), dim=-1)
    q = torch.log_softmax(torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]), dim=-1)
    kl = log_kl(p, q)
    expected = (p[0, :2].exp() * (p[0, :2] - q[0, :2])).sum()
    assert torch.allclose(kl, torch.stack([expected, torch.tensor(0.0)]))
    assert log_kl(q, p)[0] == float("inf")  # mass where the other gives none: infinite, as KL is
    torch.manual_seed(0)  # near-equal distributions: rounding puts about half the plain sums below 0
    x = torch.randn(1000, 512)
    near = log_kl(torch.log_softmax(x, -1), torch.log_softmax(x + 1e-6 * torch.randn_like(x), -1))
    assert (near >= 0).all() and near.max() < 1e-5


def test_a_gated_eval_records_each_rows_gate_reading_in_record_order(tmp_path):
    from steering.config import load_config
    from taxlens.chat import render_prompt
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.generation import greedy_generate
    from taxlens.models import load_model

    data = _mixed_val(tmp_path, every=24)
    records = load_records(data)
    model = load_model("organism:defended")
    steering, _ = load_config("organism:gated", model=model)
    # batches of 3 sorted by length reorder the records: each row must still get its own reading
    report = evaluate(model, records, data=str(data), split=None, steering=steering, max_new_tokens=2, batch_size=3,
                      progress=False)
    gate = steering.gate
    for record, row in zip(records, report.records):
        with steering.apply(model) as handle:
            greedy_generate(model, [render_prompt(model.tokenizer, record)], max_new_tokens=1)
        p = float(handle.harm_probability[0])
        assert row.gate_p_harmful == pytest.approx(p, abs=1e-3), record.id
        expected = "ablate" if p < gate.threshold else "add" if p >= gate.add_threshold else "none"
        assert row.gate == expected, record.id
    assert {row.gate for row in report.records if row.kind == "harmful"} <= {"add", "none"}
    assert EvalReport.from_json(report.to_json()).records == report.records


def test_a_threshold_sweep_gives_at_the_configs_own_thresholds_what_the_config_does(tmp_path, capsys):
    from steering.config import load_config
    from steering.search import val_figures
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.models import load_model

    data = _mixed_val(tmp_path, every=12)
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", "organism:defended", "--steer", "organism:gated", "--data", str(data),
                 "--max-new-tokens", "8", "--thresholds", "0.01", "0.1", "0.3", "0.7", "0.9", "0.95", "0.99",
                 "--add-thresholds", "0.9", "0.98", "--out", str(out)]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert (out / "sweep.png").stat().st_size > 5000 and "**(config)**" in (out / "sweep.md").read_text()
    model = load_model("organism:defended")
    steering, _ = load_config("organism:gated", model=model)
    gated = evaluate(model, load_records(data), data=str(data), split="val", steering=steering, max_new_tokens=8,
                     progress=False)
    own = next(r for r in sweep["rows"] if (r["threshold"], r["add_threshold"]) == (
        steering.gate.threshold, steering.gate.add_threshold))
    assert {k: own[k] for k in val_figures(gated)} == val_figures(gated)
    assert {row.id: row.gate_p_harmful for row in gated.records} == sweep["p_harmful"]
    # a higher threshold sends more prompts to the ablation: the gate passes more attacks, never fewer
    at_own_add = sorted((r for r in sweep["rows"] if r["add_threshold"] == steering.gate.add_threshold),
                        key=lambda r: r["threshold"])
    passes = [r["gate_passes_harmful"] + r["gate_passes_injection"] for r in at_own_add]
    assert passes == sorted(passes)
    assert [r["threshold"] for r in at_own_add] == [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99]
    assert {r["add_threshold"] for r in sweep["rows"] if r["threshold"] == 0.5} == {0.9, 0.98, 0.99}
    assert main(["sweep", "--model", "organism:defended", "--steer", "organism:gated", "--data", str(data),
                 "--thresholds", "0.5", "2", "--out", str(tmp_path / "y")]) == 2
    assert "not all probabilities" in capsys.readouterr().err
    assert main(["sweep", "--model", "organism:defended", "--steer", "organism:global", "--data", str(data),
                 "--out", str(tmp_path / "x")]) == 2
    assert "has no gate" in capsys.readouterr().err


def test_oracle_gate_runs_each_kind_under_the_decision_its_label_calls_for(tmp_path, capsys):
    from steering.config import load_config
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.models import load_model

    data = _mixed_val(tmp_path, every=20)
    out = tmp_path / "oracle.json"
    assert main(["eval", "--model", "organism:defended", "--steer", "organism:gated", "--oracle-gate", "--data",
                 str(data), "--max-new-tokens", "8", "--out", str(out)]) == 0
    report = EvalReport.read(out)
    assert "gate replaced by each record's kind" in report.steer and report.kl is not None
    model = load_model("organism:defended")
    steering, _ = load_config("organism:gated", model=model)
    records = load_records(data)
    kinds = {r.kind for r in records}
    assert kinds == {"benign", "lookalike", "harmful", "injection"}
    for decision, chosen in (("ablate", ("benign", "lookalike")), ("add", ("harmful",)), ("none", ("injection",))):
        mine = [r for r in records if r.kind in chosen]
        alone = evaluate(model, mine, data=str(data), split=None, steering=steering.decided(decision),
                         max_new_tokens=8, progress=False)
        by_id = {row.id: row.reply for row in report.records}
        assert [row.reply for row in alone.records] == [by_id[r.id] for r in mine], decision
    with pytest.raises(ValueError, match="no steering"):
        evaluate(model, records, data=str(data), split=None, steering={"benign": None}, progress=False)
    assert main(["eval", "--model", "organism:defended", "--oracle-gate", "--data", str(data), "--out",
                 str(tmp_path / "x.json")]) == 2
    assert "give --steer" in capsys.readouterr().err


def test_records_a_gate_passes_are_answered_by_the_passed_to_model(tmp_path, capsys):
    from dataclasses import replace

    from steering.config import load_config
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.models import load_model

    data = _mixed_val(tmp_path, every=24)
    records = load_records(data)
    base, defended = load_model("organism:base"), load_model("organism:defended")
    steering, _ = load_config("organism:gated", model=defended)
    run = dict(data=str(data), split=None, max_new_tokens=24, progress=False)
    gated = evaluate(defended, records, steering=steering, **run)
    handed = evaluate(defended, records, steering=steering, passed_to=base, **run)
    alone = {r.id: r for r in evaluate(base, records, **run).records}
    passed = [r for r in gated.records if r.gate == "ablate"]
    assert 0 < len(passed) < len(records)
    for row, kept in zip(handed.records, gated.records):  # passed rows: the base's reply; the rest: the steered one
        assert row.gate == kept.gate
        assert row.reply == (alone[row.id].reply if kept.gate == "ablate" else kept.reply), row.id
    assert handed.meta["passed_to"] == "organism:base" and gated.meta["passed_to"] is None
    everything = replace(steering, gate=replace(steering.gate, threshold=1.0, add_threshold=1.0))
    all_passed = evaluate(defended, records, steering=everything, passed_to=base, **run)
    assert [r.reply for r in all_passed.records] == [alone[r.id].reply for r in all_passed.records]
    with pytest.raises(ValueError, match="gated steering"):
        evaluate(defended, records, passed_to=base, **run)
    from types import SimpleNamespace

    other = SimpleNamespace(name="other", tokenizer=list(range(len(base.tokenizer) + 1)))
    with pytest.raises(ValueError, match="another vocabulary"):  # its replies could not be scored with ours
        evaluate(defended, records, steering=steering, passed_to=other, **run)
    out = tmp_path / "handed.json"
    assert main(["eval", "--model", "organism:defended", "--steer", "organism:gated", "--passed-to", "organism:base",
                 "--gate-threshold", "0.3", "--data", str(data), "--max-new-tokens", "8", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["meta"]["passed_to"] == "organism:base"
    assert main(["eval", "--model", "organism:defended", "--passed-to", "organism:base", "--data", str(data),
                 "--out", str(out)]) == 2
    assert "--passed-to acts on what a gate passes" in capsys.readouterr().err


@pytest.mark.parametrize("command, out, problem", [
    (["eval", "--model", "no/such-model", "--data", str(DATA)], "{dir}", "is a folder; give a file path"),
    (["eval", "--model", "no/such-model", "--data", str(DATA)], "{file}/r.json", "is a file, not a folder"),
    (["agent", "run", "--model", "no/such-model", "--tasks", "t.jsonl"], "{dir}", "is a folder; give a file path"),
    (["probe", "--base", "a", "--defended", "b", "--data", str(DATA)], "{file}", "is a file; give a folder"),
    (["steer", "--model", "a", "--data", str(DATA)], "{file}/sub", "is a file, not a folder"),
])
def test_an_output_path_that_cannot_be_written_stops_the_command_before_any_work(tmp_path, capsys, command, out,
                                                                                 problem):
    (tmp_path / "taken.json").write_text("{}")
    out = out.format(dir=tmp_path, file=tmp_path / "taken.json")
    with pytest.raises(SystemExit) as exited:
        main(command + ["--out", out])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --out: {out}" in err and problem in err


def test_an_output_path_this_user_may_not_write_stops_the_command_and_so_does_an_unreadable_file(
        tmp_path, capsys, monkeypatch):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))  # root may write
    for command, out in ((["eval", "--data", str(DATA)], locked / "r.json"), (["probe", "--base", "a", "--defended",
                                                                                "b", "--data", str(DATA)], locked)):
        with pytest.raises(SystemExit):
            main(command + ["--model", "m", "--out", str(out)])
        assert f"this user may not write in {locked}" in capsys.readouterr().err

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(DATA))

    monkeypatch.setattr(Path, "open", unreadable)
    assert main(["data", "check", str(DATA)]) == 2
    assert f"taxlens: error: [Errno 13] Permission denied: '{DATA}'" in capsys.readouterr().err


def test_running_out_of_memory_says_to_give_a_smaller_batch(tmp_path, capsys, monkeypatch):
    import torch

    from taxlens import commands

    def out_of_memory(args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")

    monkeypatch.setattr(commands, "cmd_eval", out_of_memory)
    assert main(["eval", "--model", "m", "--data", str(DATA), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in err and "give a smaller --batch-size" in err


def test_an_interrupted_command_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    from taxlens import commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "cmd_eval", interrupted)
    assert main(["eval", "--model", "m", "--data", str(DATA), "--out", str(tmp_path / "r.json")]) == 130
    assert capsys.readouterr().err == "taxlens: interrupted\n"


@pytest.mark.parametrize("flag, value", [("--batch-size", "0"), ("--limit", "-5"), ("--max-new-tokens", "ten")])
def test_a_count_that_is_not_positive_stops_the_command_naming_it(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--model", "no/such-model", "--data", str(DATA), "--out", str(tmp_path / "r.json"), flag, value])
    assert exited.value.code == 2 and f"argument {flag}:" in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["eval", "--data", str(DATA)],
    ["agent", "run", "--tasks", str(DATA.parent / "agent_tasks.jsonl"), "--split", "val"],
])
def test_flags_for_a_model_loaded_here_are_named_with_an_endpoint_not_ignored(tmp_path, capsys, command):
    for flags, named in ((["--adapter-scale", "0.5"], "--adapter-scale acts"),
                         (["--steer", "organism:gated", "--dtype", "float16"], "--steer, --dtype act")):
        assert main(command + ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--out", str(tmp_path / "r.json"),
                               *flags]) == 2
        err = capsys.readouterr().err
        assert f"{named} on a model loaded here" in err and "verifying" not in err  # before anything runs
