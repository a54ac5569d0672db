"""The typed eval report: a report in the contract's JSON (from taxlens or any other tool) reads back by attribute,
writes back unchanged, and a malformed one is rejected naming the file and the field."""

from __future__ import annotations

import json
import re

import pytest

from taxlens.cli import main
from taxlens.eval_report import EvalReport, ReportError

# the contract's fixed keys only, as another tool might write them, plus a key taxlens does not know
MINIMAL = {
    "model": "their-model", "data": "d.jsonl", "split": "test", "steer": None,
    "by_kind": {"lookalike": {"n": 4, "success": {"rate": 0.5, "lo": 0.15, "hi": 0.85}},
                "harmful": {"n": 2, "refusal": {"rate": 1.0, "lo": 0.34, "hi": 1.0},
                            "refusal_trigger_free": {"rate": 1.0, "lo": 0.21, "hi": 1.0}}},
    "records": [{"id": f"l{i}", "kind": "lookalike", "label": "call", "reply": "", "ok": i < 2} for i in range(4)]
               + [{"id": f"h{i}", "kind": "harmful", "label": "refuse", "reply": "no", "ok": True} for i in range(2)],
    "their_key": {"kept": True},
}


def test_a_report_with_only_the_contracts_keys_reads_by_attribute_and_writes_back(tmp_path):
    path = tmp_path / "theirs.json"
    path.write_text(json.dumps(MINIMAL))
    report = EvalReport.read(path)
    success = report.figure("lookalike", "success")
    assert (success.rate, success.n) == (0.5, 4)  # a rate without its own count is over the kind's records
    assert report.kinds["harmful"].refusal_trigger_free.n is None  # …but not a subset's
    assert report.figure("injection", "asr") is None and report.figure("harmful", "asr") is None
    assert report.ok_by_id(("lookalike",)) == {"l0": True, "l1": True, "l2": False, "l3": False}
    written = report.write(tmp_path / "again.json")
    again = json.loads(written.read_text())
    assert again["their_key"] == {"kept": True} and again["records"][0]["id"] == "l0"
    assert EvalReport.read(written) == report


def test_compare_reads_reports_written_by_other_tools(tmp_path, capsys):
    base, defended = dict(MINIMAL), json.loads(json.dumps(MINIMAL))
    for row in defended["records"][:4]:
        row["ok"] = False
    defended["by_kind"]["lookalike"]["success"] = {"rate": 0.0, "lo": 0.0, "hi": 0.49}
    for name, report in (("base", base), ("defended", defended)):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "defended.json")]) == 0
    assert json.loads(capsys.readouterr().out)["autonomy_tax_points"]["lookalike"]["diff"] == 50.0


def test_a_report_path_that_is_missing_or_a_folder_is_named_as_such(tmp_path, capsys):
    (tmp_path / "base.json").write_text(json.dumps(MINIMAL))
    for other, problem in ((tmp_path / "typo.json", "no such report file"), (tmp_path, "a folder; give the report")):
        assert main(["compare", str(tmp_path / "base.json"), str(other)]) == 2
        assert f"{other}: {problem}" in capsys.readouterr().err


def test_compare_of_reports_without_benign_or_lookalike_records_says_there_is_no_tax(tmp_path, capsys):
    harmful_only = {**MINIMAL, "by_kind": {"harmful": MINIMAL["by_kind"]["harmful"]},
                    "records": [r for r in MINIMAL["records"] if r["kind"] == "harmful"]}
    for name in ("base", "defended"):
        (tmp_path / f"{name}.json").write_text(json.dumps(harmful_only))
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "defended.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["autonomy_tax_points"] == {} and "no autonomy tax to measure" in out["warnings"][0]


def test_compare_refuses_runs_over_different_records_or_of_different_kinds(tmp_path, capsys):
    other = json.loads(json.dumps(MINIMAL))
    other.update(data="their_val.jsonl", split="val")
    other["records"][0]["id"] = "v0"
    agent = {"report": "agent", "model": "m", "tasks": "t.jsonl", "split": "test", "by_kind": {}, "trajectories": []}
    paths = {}
    for name, report in (("test", MINIMAL), ("val", other), ("agent", agent)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(report))
    assert main(["compare", str(paths["test"]), str(paths["val"])]) == 2
    err = capsys.readouterr().err
    assert f"{paths['test']} (d.jsonl, split test) and {paths['val']} (their_val.jsonl, split val)" in err
    assert "1 only in the first (l0), 1 only in the second (v0)" in err
    skipping = json.loads(json.dumps(MINIMAL))
    skipping["records"].pop(0)
    skipping["meta"] = {"unrenderable": [{"id": "l0", "line": 1, "error": "the chat template raised: x"}]}
    paths["skipping"] = tmp_path / "skipping.json"
    paths["skipping"].write_text(json.dumps(skipping))
    assert main(["compare", str(paths["test"]), str(paths["skipping"])]) == 2
    assert "1 only in the first (l0), 0 only in the second; some of them a run skipped as unrenderable" in " ".join(
        capsys.readouterr().err.split())
    assert main(["compare", str(paths["test"]), str(paths["test"]), "--steered", str(paths["agent"])]) == 2
    assert f"{paths['agent']} is an agent report" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "base.json").write_text(json.dumps(MINIMAL))
    (run / "defended.json").write_text(json.dumps(other))
    assert main(["report", str(run)]) == 2
    assert "hold different records" in capsys.readouterr().err and not (run / "report.md").exists()


@pytest.mark.parametrize("broken, names", [
    (lambda d: d.pop("records"), "missing 'records'"),
    (lambda d: d.pop("data"), "missing 'data'"),
    (lambda d: d["by_kind"]["lookalike"].pop("n"), "by_kind.lookalike: missing 'n'"),
    (lambda d: d["by_kind"]["lookalike"]["success"].update(rate="half"), "by_kind.lookalike.success.rate"),
    (lambda d: d["records"][3].pop("ok"), "records[3]: missing 'ok'"),
])
def test_a_malformed_report_is_rejected_naming_file_and_field(tmp_path, capsys, broken, names):
    report = json.loads(json.dumps(MINIMAL))
    broken(report)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(report))
    with pytest.raises(ReportError, match=re.escape(names)):
        EvalReport.read(path)
    assert main(["compare", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and names.split(":")[-1].strip() in err and "Traceback" not in err
