"""Refusal and call openings are read per model, and probe / steer say plainly when a split can't give them."""

from __future__ import annotations

import shutil

import pytest
from conftest import DATA
from test_own_pair import HERMES, LLAMA31, MISTRAL

from taxlens.cli import main
from taxlens.contract import load_records
from taxlens.readout import read_openings, template_call_openings


@pytest.mark.parametrize("template, opening", [(HERMES, "<tool_call>"), (LLAMA31, "<|python_tag|>"),
                                               (MISTRAL, "[TOOL_CALLS]")])
def test_call_openings_come_from_the_models_own_template(tiny_model_dir, tmp_path, template, opening):
    from transformers import AutoTokenizer

    shutil.copytree(tiny_model_dir, tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    tok.add_tokens([opening])
    tok.chat_template = template
    assert {tok.decode([i]) for i in template_call_openings(tok)} == {opening}


def test_the_organism_refuses_with_its_own_opening_or_the_users_phrase(records):
    from taxlens.models import load_model

    defended = load_model("organism:defended", device="cpu")
    chosen = [r for kind in ("lookalike", "benign") for r in records if r.split == "train" and r.kind == kind][::20]
    own = read_openings(defended, chosen, progress=False)
    assert own.refused > 0 and own.complied > 0
    assert own.summary(defended.tokenizer)["call"] == ["<tool_call>"]
    assert own.summary(defended.tokenizer)["refusal"] == ["I"] and "own replies" in own.openings.source
    named = read_openings(defended, chosen, refusal_phrases=["Sorry"], progress=False)
    assert named.summary(defended.tokenizer)["refusal"] == ["S"] and named.openings.source == "--refusal-openings"


def test_cached_openings_are_read_again_for_other_weights_at_the_same_name(records, tmp_path, monkeypatch):
    import torch

    import taxlens.readout as readout
    from taxlens.models import load_model

    defended = load_model("organism:defended", device="cpu")
    chosen = [r for kind in ("lookalike", "benign") for r in records if r.split == "train" and r.kind == kind][::40]
    generated = []
    real = readout.greedy_generate
    monkeypatch.setattr(readout, "greedy_generate", lambda *a, **k: generated.append(1) or real(*a, **k))
    cache = tmp_path / "openings.json"
    read_openings(defended, chosen, cache=cache, progress=False)
    read_openings(defended, chosen, cache=cache, progress=False)
    assert len(generated) == 1  # the same weights: read from the cache
    fingerprint = defended.fingerprint()
    with torch.no_grad():
        defended.hf.lm_head.weight[0, 0] += 1.0  # as if trained again at the same path
    assert defended.fingerprint() != fingerprint
    read_openings(defended, chosen, cache=cache, progress=False)
    assert len(generated) == 2


def test_probe_and_steer_say_what_was_counted_when_nothing_is_refused(tiny_model_dir, tmp_path, capsys):
    model = str(tiny_model_dir)  # random weights: it neither refuses nor calls
    n_train = len(load_records(DATA, split="train"))
    n_read = len(range(0, n_train, -(-n_train // 256)))
    for command in (["probe", "--base", model, "--defended", model],
                    ["steer", "--base", model, "--model", model, "--quick"]):
        out = tmp_path / command[0]
        assert main(command + ["--data", str(DATA), "--out", str(out), "--batch-size", "64"]) == 2
        err = capsys.readouterr().err
        assert f"refused 0 and complied with 0 of {n_read} prompts (spread over its {n_train};" in err
        assert "--refusal-openings" in err
        assert "REFUSAL_PHRASES" in err and not (out / "cache").exists()
