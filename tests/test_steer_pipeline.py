"""`taxlens steer --quick` and `taxlens report` end to end on the organism."""

from __future__ import annotations

import json

from steering.config import load_config
from taxlens.cli import main
from taxlens.models import load_model


def test_quick_gated_search_writes_a_loadable_config_table_and_plot(tmp_path):
    out = tmp_path / "steer"
    assert main(["steer", "--base", "organism:base", "--model", "organism:defended", "--data",
                 "datasets/toolcalls.jsonl", "--method", "gated", "--quick", "--out", str(out)]) == 0
    steering, config = load_config(out, model=load_model("organism:defended", device="cpu"))
    assert config["method"] == "gated" and config["quick"] is True and steering.gate is not None
    table = json.loads((out / "pareto.json").read_text())
    gated = table["methods"]["gated"]
    assert len(gated) == 4 * 2 * 11  # layers × add scales × thresholds (one ablation variant)
    chosen = next(r for r in gated if r["settings"] == config["settings"])
    assert chosen["screen"]["compliance_helpful"] > table["defended"]["screen"]["compliance_helpful"]
    assert (out / "tradeoff.png").stat().st_size > 5000 and "Pareto" in (out / "pareto.md").read_text()


def test_report_names_what_is_missing(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no base.json" in capsys.readouterr().err
