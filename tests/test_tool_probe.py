"""benchmarks/tool_probe.py reads which tool a request asks for from the residual stream, beside the model's calls."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("tool_probe", Path(__file__).parents[1] / "benchmarks" / "tool_probe.py")
tool_probe = importlib.util.module_from_spec(spec)
sys.modules["tool_probe"] = tool_probe  # its dataclass looks its module up there
spec.loader.exec_module(tool_probe)


def _calls(records):
    return [r for r in records if r.kind in tool_probe.KINDS]


def test_the_readout_counts_probe_and_model_against_the_expected_tool(tiny_model, records):
    fit = _calls([r for r in records if r.split == "train"])[:120]
    held = _calls([r for r in records if r.split == "val"])[:30]
    called = [r.expected["name"] for r in held[:20]] + [None] * 10  # right on 20, no call on 10
    out = tool_probe.tool_readout(tiny_model, fit, held, called)
    assert out.n == 30 and out.own_right == 20
    assert len(out.probe_right) == tiny_model.n_layers + 1 and 0 <= out.best_layer <= tiny_model.n_layers
    assert all(0 <= k <= 30 for k in out.probe_right) and 0 <= out.rescued <= 10
    lone = next(r for r in fit if r.expected["name"] != fit[0].expected["name"])
    with pytest.raises(ValueError, match=f"name '{lone.expected['name']}' once"):
        tool_probe.tool_readout(tiny_model, [r for r in fit if r.expected["name"] != lone.expected["name"]] + [lone],
                                held, called)


def test_a_report_of_another_split_or_missing_records_is_refused_by_name(tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"split": "test", "records": []}))
    with pytest.raises(SystemExit, match=r"r\.json: a report of split 'test', not 'val'"):
        tool_probe.called_tools(report, ["a"], "val")
    report.write_text(json.dumps({"split": "val", "records": [
        {"id": "a", "reply": '<tool_call>{"name": "read_file", "arguments": {}}</tool_call>'}]}))
    assert tool_probe.called_tools(report, ["a"], "val") == ["read_file"]
    with pytest.raises(SystemExit, match=r"no reply for 1 val records, e\.g\. b"):
        tool_probe.called_tools(report, ["a", "b"], "val")
