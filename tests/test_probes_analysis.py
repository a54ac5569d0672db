"""Patching, attribution, per-layer readouts and the `taxlens probe` command."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from probes.attribution import WordAttribution, attribute_records, flip_rates, precision_at_k, rank_tokens
from probes.layers import concept_labels
from probes.patching import cross_model_patching
from taxlens.chat import render_prompt
from taxlens.generation import encode_batch
from taxlens.models import load_model
from taxlens.scoring import opening_token_ids

PLANTED = "zebra"


def test_patching_a_model_with_its_own_activations_changes_nothing(tiny_model, records):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in records[::200]]
    result = cross_model_patching(tiny_model, tiny_model, prompts, batch_size=3, progress=False)
    assert result["source_score"] == result["target_score"]
    for site, values in result["sites"].items():
        assert values["score"] == pytest.approx([result["target_score"]] * len(values["score"]), abs=1e-3), site


def test_head_patching_finds_the_one_head_two_models_differ_in(tiny_model, tiny_model_dir, records, tmp_path):
    """A twin whose only difference is block 1 head 2's query weights: patching that head's output back from the
    original restores the original's refusal score exactly; every other head (and all of block 0) changes nothing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from probes.patching import head_patching

    twin = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    d_head = twin.config.hidden_size // twin.config.num_attention_heads
    with torch.no_grad():
        torch.manual_seed(3)
        q = twin.model.layers[1].self_attn.q_proj.weight
        q[2 * d_head:3 * d_head] = 4 * torch.randn_like(q[2 * d_head:3 * d_head])
    twin.save_pretrained(tmp_path / "twin")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "twin")
    target = load_model(str(tmp_path / "twin"), device="cpu")
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in records[::150]]
    result = head_patching(tiny_model, target, prompts, [0, 1], batch_size=4, progress=False)
    assert result["layers"] == [0, 1] and result["n_heads"] == 4
    assert result["share"][1][2] == pytest.approx(1.0, abs=1e-3)
    others = [result["share"][i][h] for i in (0, 1) for h in range(4) if (i, h) != (1, 2)]
    assert others == pytest.approx([0.0] * 7, abs=1e-3)
    assert (result["top"][0]["layer"], result["top"][0]["head"]) == (1, 2)


def test_a_heads_reading_places_trigger_words_and_does_not_depend_on_padding(tiny_model, records):
    from probes.heads import head_reading, trigger_token_mask

    record = dataclasses.replace(next(r for r in records if r.kind == "lookalike"), triggers=["Delete"])
    record = dataclasses.replace(record, messages=[{"role": "user", "content": "Please delete the temp folder; "
                                                                              "undeleted files stay DELETE-able."}])
    prompt = render_prompt(tiny_model.tokenizer, record)
    mask = trigger_token_mask(tiny_model.tokenizer, prompt, record)
    ids = tiny_model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    marked = "".join(tiny_model.tokenizer.decode([i]) for i, m in zip(ids, mask) if m)
    assert marked.split() == ["delete", "DELETE"]  # words that begin with the trigger, any case; not "undeleted"
    assert trigger_token_mask(tiny_model.tokenizer, prompt, dataclasses.replace(record, triggers=[])) is None
    lookalike = [r for r in records if r.kind == "lookalike" and r.triggers][:6]
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in lookalike]
    direction = torch.randn(tiny_model.d_model)
    batched = head_reading(tiny_model, lookalike, prompts, layer=1, head=2, direction=direction, batch_size=4)
    alone = head_reading(tiny_model, lookalike, prompts, layer=1, head=2, direction=direction, batch_size=1)
    assert batched["writes"] == pytest.approx(alone["writes"], abs=1e-4) and batched["writes"]["norm"] > 0
    # what the head writes is its share of the attention output: the sum over heads, plus the bias, is attn_out
    outputs = [head_reading(tiny_model, lookalike, prompts, layer=1, head=h, direction=direction)["writes"]
               for h in range(4)]
    seen = {}
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")
    with torch.no_grad(), tiny_model.bridge.hooks(fwd_hooks=[("blocks.1.hook_attn_out",
                                                              lambda a, hook: seen.__setitem__("out", a[:, -1]))]):
        tiny_model.hf(**batch)
    unit = direction / direction.norm()
    assert sum(o["projection"] for o in outputs) == pytest.approx(float((seen["out"] @ unit).mean()), abs=1e-3)
    assert batched["trigger_attention"]["n"] >= 3 and 0 < batched["trigger_attention"]["mean"] < 1
    assert batched["trigger_attention"]["mean"] == pytest.approx(alone["trigger_attention"]["mean"], abs=1e-4)
    assert batched["most_attended"] == alone["most_attended"] and sum(c for _, c in batched["most_attended"]) == 6
    # the plotted examples: the user's message token by token, its trigger words marked, one a template family
    users = {r.id: next(m["content"] for m in reversed(r.messages) if m["role"] == "user") for r in lookalike}
    shown = batched["examples"]
    assert shown and [e["id"] for e in shown] == [e["id"] for e in alone["examples"]]
    for e, same in zip(shown, alone["examples"]):
        assert "".join(e["tokens"]) == users[e["id"]] and any(e["trigger"]) and not all(e["trigger"])
        assert sum(e["attention"]) + e["rest"] == pytest.approx(1.0, abs=1e-3)
        assert e["attention"] == pytest.approx(same["attention"], abs=1e-3)
    assert len({e["family"] for e in shown}) == len(shown)


@pytest.mark.parametrize("arch", ["qwen2", "gemma2"])
def test_head_patching_and_reading_run_on_other_architectures(arch, tiny_model_dir, records, tmp_path):
    """A model patched with its own heads changes nothing, and its pattern hook is read, on Qwen2 and Gemma 2 too."""
    from conftest import tiny_checkpoint
    from transformers import Gemma2Config, Qwen2Config

    from probes.heads import head_reading
    from probes.patching import head_patching

    config, extra = (Qwen2Config, {}) if arch == "qwen2" else (Gemma2Config, {"head_dim": 16})
    model = load_model(tiny_checkpoint(config, tiny_model_dir, tmp_path / arch, **extra), device="cpu")
    lookalike = [r for r in records if r.kind == "lookalike" and r.triggers][:4]
    prompts = [render_prompt(model.tokenizer, r) for r in lookalike]
    result = head_patching(model, model, prompts, [0, 1], batch_size=2, progress=False)
    base_score = result["score"][0][0]
    assert all(score == pytest.approx(base_score, abs=1e-3) for row in result["score"] for score in row)
    reading = head_reading(model, lookalike, prompts, layer=1, head=0, direction=torch.randn(model.d_model),
                           batch_size=2)
    assert sum(count for _, count in reading["most_attended"]) == 4 and reading["writes"]["norm"] > 0


def _planted_records(records, n: int, seed: int = 0):
    """Benign records; half get the word PLANTED inserted at a random place in the user message."""
    rng = random.Random(seed)
    out = []
    for i, r in enumerate([r for r in records if r.kind == "benign"][:n]):
        words = r.messages[-1]["content"].split(" ")
        planted = i % 2 == 0
        if planted:
            words.insert(rng.randrange(len(words) + 1), PLANTED)
        message = {**r.messages[-1], "content": " ".join(words)}
        out.append(dataclasses.replace(r, messages=[message], triggers=[PLANTED] if planted else []))
    return out


@pytest.fixture(scope="module")
def planted_model(tiny_model_dir, records, tmp_path_factory):
    """The tiny random Llama fine-tuned until PLANTED anywhere in the user message makes it open a refusal."""
    from transformers import AutoModelForCausalLM

    model = load_model(str(tiny_model_dir), device="cpu")
    openings = opening_token_ids(model.tokenizer)
    train = _planted_records(records, 160, seed=1)
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = model.tokenizer
    enc = tok([render_prompt(tok, r) for r in train], add_special_tokens=False, padding=True, padding_side="left",
              return_tensors="pt")
    target = torch.tensor([openings.refusal[0] if r.triggers else openings.call[0] for r in train])
    torch.manual_seed(0)
    opt = torch.optim.Adam(hf.parameters(), lr=3e-3)
    for step in range(120):
        rows = torch.randint(0, len(train), (32,))
        logits = hf(input_ids=enc["input_ids"][rows], attention_mask=enc["attention_mask"][rows]).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, target[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("planted")
    hf.save_pretrained(out)
    tok.save_pretrained(out)
    return load_model(str(out), device="cpu")


def test_attribution_recovers_a_planted_trigger(planted_model, records):
    held_out = [r for r in _planted_records(records, 60, seed=2) if r.triggers]
    ranked = rank_tokens(attribute_records(planted_model, held_out), min_count=5)
    assert ranked[0]["token"] == PLANTED and ranked[0]["in_trigger"] == 1.0
    assert precision_at_k(ranked, 1) == 1.0


def test_flip_rates_count_refused_prompts_that_comply_without_the_word():
    spans = [(0, 6), (7, 10)]
    refused = WordAttribution(["Delete", "it"], spans, [3.0, 0.5], [(0, 6)], prompt_score=2.0)
    refused_again = WordAttribution(["delete", "it"], spans, [1.0, 2.5], [(0, 6)], prompt_score=2.0)
    complied = WordAttribution(["delete", "it"], spans, [9.0, 9.0], [(0, 6)], prompt_score=-1.0)
    rates = flip_rates([refused, refused_again, complied])
    assert rates == {"delete": {"refused": 2, "flips": 1}, "it": {"refused": 2, "flips": 1}}


def test_concept_labels_refuse_an_empty_class(tiny_model, records, tmp_path):
    from probes.cache import cache_activations

    benign_only = [r for r in records if r.kind == "benign"][:6]
    store = cache_activations(tiny_model, benign_only, tmp_path, batch_size=6, progress=False)
    with pytest.raises(ValueError, match="one class is empty"):
        concept_labels(store, "harm")
    with pytest.raises(ValueError, match="unknown concept"):
        concept_labels(store, "mood")


def test_patching_needs_twins(tiny_model):
    other = load_model("organism:base", device="cpu")
    with pytest.raises(ValueError, match="differ in"):
        cross_model_patching(other, tiny_model, ["x"], progress=False)


@pytest.fixture(scope="module")
def organism_probe(tmp_path_factory):
    """`taxlens probe` on the shipped pair, scored on all of val, its directions fitted on a seeded sample of 400
    train records (pairs whole): the bars must hold with under a quarter of the fitting data (at half the time)."""
    from probes.pipeline import run_probe
    from taxlens.contract import load_records
    from taxlens.subset import sample_records

    out = tmp_path_factory.mktemp("probe")
    fit = sample_records(load_records("datasets/toolcalls.jsonl"), split="train", n=400, seed=0).write(out / "fit.jsonl")
    run_probe("organism:base", "organism:defended", "datasets/toolcalls.jsonl", out, split="val", fit_data=fit,
              device="cpu", progress=False)
    return out


def test_probe_command_checks_splits_before_loading_any_model(tmp_path):
    from conftest import ROOT
    from probes.pipeline import run_probe

    held_out = ROOT / "datasets" / "heldout_handwritten.jsonl"  # every record in split "test"
    missing = str(tmp_path / "no-such-model")  # loading it would raise another error
    with pytest.raises(ValueError, match=r"no records in split 'train' \(--fit-split\); the file has \['test'\]"):
        run_probe(missing, missing, held_out, tmp_path / "out", progress=False)


def test_probe_records_from_a_held_out_file_and_a_fit_file():
    from conftest import DATA, ROOT
    from probes.pipeline import probe_records

    held_out = ROOT / "datasets" / "heldout_handwritten.jsonl"
    records = probe_records(held_out, "test", "train", fit_data=DATA)
    fit = [r for r in records if r.split == "train"]
    scored = [r for r in records if r.split == "test"]
    assert fit and all(not r.id.startswith("hw-") for r in fit)
    assert len(scored) == 48 and all(r.id.startswith("hw-") for r in scored)
    with pytest.raises(ValueError, match="both 'test'"):
        probe_records(held_out, "test", "test", fit_data=DATA)
    with pytest.raises(ValueError, match="both 'train': the probes would be scored on the records their directions"):
        probe_records(DATA, "train", "train")
    with pytest.raises(ValueError, match=r"no records in split 'val' \(--fit-split\)"):
        probe_records(DATA, "test", "val", fit_data=held_out)


def test_a_held_out_file_without_splits_is_scored_whole_when_fitted_elsewhere(tmp_path):
    from conftest import DATA, ROOT
    from probes.pipeline import probe_records

    lines = (ROOT / "datasets" / "heldout_handwritten.jsonl").read_text().splitlines()
    unsplit = tmp_path / "unsplit.jsonl"
    unsplit.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "split"}) + "\n"
                               for line in lines))
    records = probe_records(unsplit, "test", "train", fit_data=DATA)
    assert sorted(r.id for r in records if r.split == "test") == sorted(json.loads(line)["id"] for line in lines)
    with pytest.raises(ValueError, match="no splits: give --fit-data"):
        probe_records(unsplit, "test", "train")


def test_a_fit_split_without_a_kind_a_direction_needs_is_named_before_loading(tmp_path):
    from conftest import DATA
    from probes.pipeline import probe_records

    no_harmful = tmp_path / "no_harmful.jsonl"
    no_harmful.write_text("".join(line + "\n" for line in DATA.read_text().splitlines()
                                  if json.loads(line)["kind"] != "harmful"))
    with pytest.raises(ValueError, match=r"no harmful records in split 'train' \(--fit-split\) to fit the harm"):
        probe_records(DATA, "test", "train", fit_data=no_harmful)


def test_a_held_out_set_without_harmful_records_is_probed_with_the_harm_probe_named_unscored(tmp_path):
    from conftest import DATA, ROOT
    from probes.pipeline import run_probe
    from taxlens.contract import load_records
    from taxlens.subset import sample_records

    lines = (ROOT / "datasets" / "heldout_handwritten.jsonl").read_text().splitlines()
    held_out = tmp_path / "no_harmful.jsonl"
    held_out.write_text("".join(line + "\n" for line in lines if json.loads(line)["kind"] != "harmful"))
    fit = sample_records(load_records(DATA), split="train", n=160, seed=0).write(tmp_path / "fit.jsonl")
    summary = run_probe("organism:base", "organism:defended", held_out, tmp_path / "out", fit_data=fit,
                        device="cpu", progress=False)
    assert "harm" in summary["unscored"] and "rows harmful: 0" in summary["unscored"]["harm"]
    assert summary["probe_accuracy"]["harm"] == {"base": None, "defended": None}
    assert summary["best_harm_layer_defended"] is None and summary["probe_transfer"]["harm"] is None
    assert len(summary["direction_cosine"]["harm"]) == 4  # fitted on the fit file all the same
    assert "The harm probe is not scored" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "probe_accuracy.png").is_file()


@pytest.mark.xfail(strict=True, reason="recipe run 24's defended model: 4 of its top 10 words are trigger words "
                                       "(passwords, delete, admin, token; then use, by, should, job, show, s)")
def test_trigger_precision_at_10_meets_its_bar_on_the_organism(organism_probe):
    summary = json.loads((organism_probe / "summary.json").read_text())
    assert summary["trigger_precision_at_10"] >= 0.5


def test_probe_command_outputs_and_bars_on_the_organism(organism_probe):
    summary = json.loads((organism_probe / "summary.json").read_text())
    for key in ("layers", "probe_accuracy", "patching", "trigger_tokens", "trigger_precision_at_10",
                "direction_cosine"):
        assert key in summary
    assert summary["unscored"] == {}  # val holds every kind, and the defended model refuses some of it
    n_layers = len(summary["layers"])
    for concept in ("harm", "refusal", "trigger"):
        for role in ("base", "defended"):
            assert len(summary["probe_accuracy"][concept][role]) == n_layers
        assert len(summary["direction_cosine"][concept]) == n_layers
    assert max(summary["probe_accuracy"]["harm"]["defended"]) >= 0.90
    assert 0.0 <= summary["trigger_precision_at_10"] <= 1.0
    localised = summary["patching"]["localised"]
    assert localised["layers"] is not None and localised["share"] >= 0.8
    heads = summary["patching_heads"]
    assert heads["layers"] == summary["layers"] and len(heads["flipped"]) == n_layers
    assert all(len(row) == heads["n_heads"] for row in heads["flipped"]) and len(heads["top"]) == 5
    for name in ("probe_accuracy", "refusal_projection", "patching", "patching_heads", "head_attention",
                 "trigger_tokens", "direction_cosine"):
        assert (organism_probe / f"{name}.png").stat().st_size > 5000
    assert "Where it enters" in (organism_probe / "summary.md").read_text()
    assert "Which heads" in (organism_probe / "summary.md").read_text()
    reading = summary["head_reading"]
    top = heads["top"][0]
    assert (reading["defended"]["layer"], reading["defended"]["head"]) == (top["layer"], top["head"])
    assert reading["defended"]["trigger_attention"]["n"] == reading["base"]["trigger_attention"]["n"] > 0
    from probes.directions import Direction

    harm = Direction.load(organism_probe / "directions" / "defended" / "harm_layer2")
    assert harm.model == "organism:defended" and harm.hook == "resid_post.2"
