"""`taxlens eval` end to end on a tiny random-weight Llama: junk replies come out labelled, nothing crashes."""

from __future__ import annotations

import json

from conftest import DATA

from taxlens.cli import main


def test_eval_command_on_a_random_model_writes_the_contract_report(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["eval", "--model", str(tiny_model_dir), "--data", str(DATA), "--split", "test", "--limit", "400",
                 "--max-new-tokens", "12", "--batch-size", "32", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
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
    assert all(isinstance(r["refusal_score"], float) for r in report["records"])
    printed = capsys.readouterr().out
    assert "lookalike" in printed and str(out) in printed


def test_eval_rejects_a_broken_prompt_file_naming_the_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(DATA.read_text().splitlines()[0] + "\n{broken\n")
    code = main(["eval", "--model", str(tiny_model_dir), "--data", str(bad), "--out", str(tmp_path / "r.json")])
    assert code == 2 and "bad.jsonl:2: field '<json>'" in capsys.readouterr().err
