"""Activation caching, directions and linear probes: the building blocks `taxlens probe` is made of."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_checkpoint

from probes.cache import ActivationStore, cache_activations, collect
from taxlens.hooks import resid_hooks
from probes.directions import Direction, mean_diff, pca
from probes.linear import LinearProbe, cross_validated
from taxlens.chat import render_prompt


@pytest.fixture(scope="module")
def mixed(records):
    return [r for r in records if r.split == "test"][::25]  # every kind, prompts of different lengths


@pytest.mark.parametrize("side", ["left", "right"])
def test_batched_equals_single_prompt_for_either_padding(tiny_model, mixed, side):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in mixed]
    hooks, positions = resid_hooks(tiny_model.n_layers), (-1, -3, "user_end")
    batched = collect(tiny_model, prompts, mixed, hooks, positions, padding_side=side)
    assert batched.shape == (len(mixed), len(hooks), len(positions), tiny_model.d_model)
    for i in range(len(mixed)):
        single = collect(tiny_model, prompts[i:i + 1], mixed[i:i + 1], hooks, positions, padding_side=side)
        assert (batched[i] - single[0]).abs().max() < 1e-5


def test_store_round_trip_with_lazy_reads(tiny_model, mixed, tmp_path):
    store = cache_activations(tiny_model, mixed, tmp_path, positions=(-1, "user_end"), batch_size=4, progress=False)
    reopened = ActivationStore(tmp_path)
    assert len(reopened) == len(mixed) and len(reopened.index["shards"]) == -(-len(mixed) // 4)
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in mixed]
    direct = collect(tiny_model, prompts, mixed, store.hooks, (-1, "user_end"))
    rows = reopened.select(kinds=("harmful", "lookalike"))
    assert rows and all(mixed[i].kind in ("harmful", "lookalike") for i in rows)
    for h, hook in enumerate(store.hooks):
        assert torch.allclose(reopened.load(hook, "user_end", rows), direct[rows, h, 1], atol=1e-6)
        assert torch.allclose(reopened.load(hook, -1), direct[:, h, 0], atol=1e-6)  # every row, in record order
    _, scores = collect(tiny_model, prompts, mixed, store.hooks, (-1,), with_scores=True)
    assert torch.allclose(reopened.refusal_scores(), scores, atol=1e-4)
    assert reopened.select(split="train") == []
    with pytest.raises(ValueError, match="kinds must be among"):
        reopened.select(kinds=("lookalikes",))
    # batched by prompt length, not record order: each shard's prompts are no longer than the next shard's
    length = [len(tiny_model.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    spans = [(min(length[i] for i in s["rows"]), max(length[i] for i in s["rows"])) for s in reopened.index["shards"]]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])) and len(set(length)) > 1


def test_a_cache_stopped_half_way_over_an_old_one_is_not_read_as_whole(tiny_model, mixed, tmp_path, monkeypatch):
    import probes.cache as cache

    cache_activations(tiny_model, mixed, tmp_path, batch_size=4, progress=False)
    calls = {"n": 0}
    real = cache._forward

    def stops_at_the_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "_forward", stops_at_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        cache_activations(tiny_model, mixed[::-1], tmp_path, batch_size=4, progress=False)
    with pytest.raises(FileNotFoundError):
        ActivationStore(tmp_path)


def test_a_smaller_cache_over_a_larger_one_leaves_only_its_own_shards(tiny_model, mixed, tmp_path):
    cache_activations(tiny_model, mixed, tmp_path, batch_size=4, progress=False)
    store = cache_activations(tiny_model, mixed[:5], tmp_path, batch_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == sorted(s["file"] for s in store.index["shards"])
    assert len(store.index["shards"]) == 2 and len(store) == 5


def test_a_cache_whose_shards_hold_contiguous_runs_reads_in_record_order(tmp_path):
    from safetensors.torch import save_file

    resid = torch.arange(5 * 1 * 1 * 3, dtype=torch.float32).reshape(5, 1, 1, 3)  # [rows, hook, position, d_model]
    save_file({"resid": resid[:2].contiguous()}, tmp_path / "a.safetensors")
    save_file({"resid": resid[2:].contiguous()}, tmp_path / "b.safetensors")
    records = [{"id": str(i), "kind": "benign", "domain": "file", "split": "val", "refusal_score": 0.0}
               for i in range(5)]
    (tmp_path / "index.json").write_text(json.dumps({
        "model": "m", "hooks": ["resid_post.0"], "positions": [-1], "d_model": 3, "dtype": "float32",
        "shards": [{"file": "a.safetensors", "start": 0, "stop": 2}, {"file": "b.safetensors", "start": 2, "stop": 5}],
        "records": records}))
    store = ActivationStore(tmp_path)
    assert torch.equal(store.load("resid_post.0", -1), resid[:, 0, 0])
    assert torch.equal(store.load("resid_post.0", -1, [4, 1]), resid[[4, 1], 0, 0])


def test_direction_maths_by_hand(tmp_path):
    pos = torch.tensor([[2.0, 0.0, 1.0], [4.0, 2.0, 1.0]])   # mean (3, 1, 1)
    neg = torch.tensor([[0.0, 1.0, 1.0], [0.0, -1.0, 1.0]])  # mean (0, 0, 1)
    expected = torch.tensor([3.0, 1.0, 0.0]) / 10 ** 0.5
    assert torch.allclose(mean_diff(pos, neg), expected, atol=1e-6)
    assert pca(pos, neg) @ expected > 0  # signed from negative to positive
    d = Direction.fit(pos, neg, hook="resid_pre.1", position=-1, model="m", data={"positive": "a"})
    assert torch.allclose(d.project(pos), pos @ expected, atol=1e-6)
    d.save(tmp_path / "dir")
    back = Direction.load(tmp_path / "dir")
    assert torch.equal(back.vector, d.vector) and back.data["n_positive"] == 2 and back.cosine(d) == pytest.approx(1.0)


def test_probe_on_separable_synthetic_data():
    rng = np.random.default_rng(0)
    w = rng.normal(size=16)
    X = rng.normal(size=(200, 16))
    y = (X @ w > 0).astype(int)
    probe = LinearProbe(C=10.0).fit(X, y)
    assert probe.score(X, y) > 0.97
    assert np.corrcoef(probe.direction(), w / np.linalg.norm(w))[0, 1] > 0.9
    cv = cross_validated(X, y)
    assert cv["accuracy"]["rate"] > 0.9 and cv["auroc"]["value"] > 0.95 and cv["auroc"]["lo"] < cv["auroc"]["value"]


def test_clear_errors(tiny_model, mixed, tmp_path):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in mixed[:2]]
    with pytest.raises(KeyError, match="unknown hook"):
        collect(tiny_model, prompts, mixed[:2], ["resid_pre.99"], (-1,))
    with pytest.raises(ValueError, match="outside its"):
        collect(tiny_model, prompts, mixed[:2], ["resid_pre.0"], (-100000,))
    with pytest.raises(ValueError, match="two classes"):
        LinearProbe().fit(np.zeros((4, 3)), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="non-empty"):
        mean_diff(torch.zeros((0, 3)), torch.zeros((2, 3)))
    with pytest.raises(ValueError, match="width mismatch"):
        mean_diff(torch.zeros((2, 3)), torch.zeros((2, 4)))
    probe = LinearProbe().fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="width mismatch"):
        probe.predict_proba(np.zeros((1, 5)))


def test_cached_refusal_score_is_the_models_own_with_logit_softcapping(tiny_model_dir, mixed, tmp_path):
    """Gemma 2 soft-caps its logits after the unembedding: the score cached beside the activations must come from
    the model's own head, as the full forward's does (it once applied the bare unembedding)."""
    from transformers import AutoModelForCausalLM, Gemma2Config

    from taxlens.generation import encode_batch
    from taxlens.models import load_model
    from taxlens.scoring import opening_token_ids, refusal_score

    folder = tiny_checkpoint(Gemma2Config, tiny_model_dir, tmp_path / "gemma2", head_dim=16,
                             final_logit_softcapping=5.0)
    hf = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        hf.lm_head.weight.mul_(300.0)  # logits far past the cap, where capping changes the distribution
    hf.save_pretrained(folder)
    gemma = load_model(folder, device="cpu")
    prompts = [render_prompt(gemma.tokenizer, r) for r in mixed]
    _, cached = collect(gemma, prompts, mixed, ["resid_post.1"], (-1,), with_scores=True)
    with torch.no_grad():
        last = gemma.hf(**encode_batch(gemma.tokenizer, prompts, "cpu")).logits[:, -1]
    full = refusal_score(torch.log_softmax(last.float(), dim=-1), opening_token_ids(gemma.tokenizer))
    assert last.abs().max() <= 5.0 and (cached - full).abs().max() < 1e-4


@pytest.mark.parametrize("held, title", [((0.91, 0.86, 0.94), "Harm stays readable"),
                                         ((0.70, 0.62, 0.77), "Harm is partly readable"),
                                         ((0.63, 0.46, 0.78), "Harm is not readable here")])
def test_the_probe_summary_claims_harm_is_readable_only_where_the_held_out_figure_bears_it(held, title):
    from probes.report import _harm_line

    rate, lo, hi = held
    summary = {"best_harm_layer_defended": {"layer": 1, "accuracy": {"rate": 0.95, "lo": 0.9, "hi": 0.97, "k": 95,
                                                                     "n": 100}},
               "split": "test", "fit_split": "train", "unscored": {},
               "probe_transfer": {"harm": {"defended_to_base": [None, {"own": {"rate": rate, "lo": lo, "hi": hi,
                                                                              "k": 30, "n": 40}}]}}}
    line = _harm_line(summary)
    assert line.startswith(f"- **{title}.**") and f"{100 * rate:.1f}%" in line
    assert ("still knows" in line) == (title == "Harm stays readable")
