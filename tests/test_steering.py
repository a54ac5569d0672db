"""Steering hooks, the gate, configs and the orthogonalised export, on the tiny random Llama."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import tiny_checkpoint

from steering.config import load_config, save_config
from steering.export import export_orthogonalized
from steering.gate import HarmGate
from steering.hooks import Steering, oracle_gate
from taxlens.chat import render_prompt
from taxlens.generation import encode_batch, greedy_generate
from taxlens.models import load_model


@pytest.fixture(scope="module")
def prompts(tiny_model, records):
    return [render_prompt(tiny_model.tokenizer, r) for r in records[::150]]


@pytest.fixture(scope="module")
def direction(tiny_model):
    torch.manual_seed(1)
    return torch.randn(tiny_model.d_model)


@torch.no_grad()
def _forward(model, prompts, steering=None, hooks=()):
    batch = encode_batch(model.tokenizer, prompts, model.device)
    mask = batch["attention_mask"].bool()
    if steering is None:
        with model.bridge.hooks(fwd_hooks=list(hooks)):
            return model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[mask]
    with steering.apply(model), model.bridge.hooks(fwd_hooks=list(hooks)):
        return model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[mask]


def test_ablation_leaves_no_projection_at_any_layer(tiny_model, prompts, direction):
    steering = Steering(direction)
    seen = {}
    names = [n for n in tiny_model.bridge.hook_dict
             if n.startswith("blocks.") and n.endswith(("hook_resid_pre", "hook_resid_mid", "hook_resid_post"))]
    _forward(tiny_model, prompts, steering, [(n, lambda a, hook, n=n: seen.__setitem__(n, a.clone())) for n in names])
    ablated = max((a @ steering.direction).abs().max().item() for a in seen.values())
    assert len(seen) == len(names)
    _forward(tiny_model, prompts, None, [(n, lambda a, hook, n=n: seen.__setitem__(n, a.clone())) for n in names])
    plain = max((a @ steering.direction).abs().max().item() for a in seen.values())
    assert ablated < 1e-4 * plain


def test_handle_removes_its_hooks_and_a_second_patch_is_refused_until_it_does(tiny_model, prompts, direction):
    plain = _forward(tiny_model, prompts)
    handle = Steering(direction).patch(tiny_model)
    steered = _forward(tiny_model, prompts)
    assert not torch.allclose(steered, plain)
    with pytest.raises(ValueError, match="already steered"):  # a notebook cell run twice
        Steering(direction, coefficient=4.0, add_layer=1, ablate=False).patch(tiny_model)
    assert torch.equal(_forward(tiny_model, prompts), steered)
    handle.remove()
    assert torch.equal(_forward(tiny_model, prompts), plain)
    Steering(direction).patch(tiny_model).remove()


@pytest.mark.parametrize("gate_reads", [None, (0,), (0, 1)])
def test_kv_cached_generation_equals_uncached_under_steering(tiny_model, prompts, direction, gate_reads):
    gate = None if gate_reads is None else HarmGate(torch.randn(len(gate_reads), tiny_model.d_model) * 0.1, 0.0,
                                                     layer=gate_reads[-1], threshold=0.5, read_layers=gate_reads)
    steering = Steering(direction, gate=gate)
    with steering.apply(tiny_model):
        cached = greedy_generate(tiny_model, prompts, max_new_tokens=12, use_cache=True)
        uncached = greedy_generate(tiny_model, prompts, max_new_tokens=12, use_cache=False)
    assert [r.tokens for r in cached] == [r.tokens for r in uncached]


def _gate_at_median(model, prompts, layer=0):
    """A gate whose threshold splits this batch in half."""
    torch.manual_seed(2)
    weight = torch.randn(model.d_model)
    reads = {}
    _forward(model, prompts, None, [(f"blocks.{layer}.hook_resid_post", lambda a, hook: reads.update(r=a[:, -1]))])
    p = torch.sigmoid(reads["r"] @ weight)
    return HarmGate(weight, 0.0, layer, threshold=float(p.median()) + 1e-6), p


def test_a_gate_moved_past_its_add_threshold_passes_below_it_and_adds_above_it():
    gate = HarmGate(torch.zeros(4), 0.0, layer=0, threshold=0.5, add_threshold=0.99)
    assert gate.at(0.3) == dataclasses.replace(gate, threshold=0.3)
    moved = gate.at(0.995)
    assert (moved.threshold, moved.add_threshold) == (0.995, 0.995)
    ablate, add = moved.decide(torch.tensor([0.993, 0.996]))
    assert ablate.tolist() == [True, False] and add.tolist() == [False, True]
    assert HarmGate(torch.zeros(4), 0.0, layer=0).at(0.7).add_threshold is None
    with pytest.raises(ValueError, match="not a probability"):
        gate.at(1.5)


def test_gate_decides_per_row_in_a_mixed_batch(tiny_model, prompts, direction):
    gate, p = _gate_at_median(tiny_model, prompts)
    decided = p < gate.threshold
    assert 0 < decided.sum() < len(prompts)
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")
    last = torch.tensor(batch["attention_mask"].shape[1] - 1)

    def logits(steering):
        with torch.no_grad(), steering.apply(tiny_model) if steering else torch.no_grad():
            return tiny_model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[:, last]

    gated = logits(Steering(direction, gate=gate))
    always = logits(Steering(direction, ablate_from=gate.layer))  # every row, as the gate ablates its rows
    plain = logits(None)
    for row in range(len(prompts)):
        expected = always[row] if decided[row] else plain[row]
        assert torch.allclose(gated[row], expected, atol=1e-4), row


def test_an_add_threshold_leaves_the_rows_between_alone(tiny_model, prompts, direction):
    gate, p = _gate_at_median(tiny_model, prompts)
    add_from = float(p.sort().values[-2])  # the two most harmful-looking rows get the direction added
    gate = dataclasses.replace(gate, add_threshold=add_from)
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")

    def logits(steering):
        with torch.no_grad(), steering.apply(tiny_model) if steering else torch.no_grad():
            return tiny_model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[:, -1]

    gated = logits(Steering(direction, gate=gate, add_layer=gate.layer, coefficient=3.0))
    ablated = logits(Steering(direction, ablate_from=gate.layer))
    added = logits(Steering(direction, ablate=False, add_layer=gate.layer, coefficient=3.0))
    plain = logits(None)
    regimes = []
    for row in range(len(prompts)):
        regime = "ablated" if p[row] < gate.threshold else "added" if p[row] >= add_from else "alone"
        expected = {"ablated": ablated, "added": added, "alone": plain}[regime][row]
        assert torch.allclose(gated[row], expected, atol=1e-4), (row, regime)
        regimes.append(regime)
    assert {"ablated", "added", "alone"} <= set(regimes)
    with pytest.raises(ValueError, match="can't be both ablated"):
        dataclasses.replace(gate, add_threshold=gate.threshold - 0.1)
    with pytest.raises(ValueError, match="not a probability"):
        dataclasses.replace(gate, threshold=2.0)
    with pytest.raises(ValueError, match="before the gate's layer"):
        Steering(direction, gate=dataclasses.replace(gate, layer=1, read_layers=None), add_layer=0, coefficient=1.0)


def test_a_steering_decided_for_every_row_does_what_its_gate_does_to_the_rows_it_sends_there(tiny_model, prompts,
                                                                                           direction):
    gate, p = _gate_at_median(tiny_model, prompts)
    gate = dataclasses.replace(gate, add_threshold=float(p.sort().values[-2]))
    steering = Steering(direction, gate=gate, add_layer=gate.layer, coefficient=3.0, one_sided=True)
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")

    def logits(s):
        with torch.no_grad(), s.apply(tiny_model) if s else torch.no_grad():
            return tiny_model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[:, -1]

    gated = logits(steering)
    decided = {d: logits(steering.decided(d)) for d in ("ablate", "add", "none")}
    ablate, add = gate.decide(p)
    for row in range(len(prompts)):
        regime = "ablate" if ablate[row] else "add" if add[row] else "none"
        assert torch.allclose(gated[row], decided[regime][row], atol=1e-4), (row, regime)
    assert ablate.any() and add.any() and not torch.allclose(decided["ablate"], decided["add"])
    assert steering.decided("none") is None and dataclasses.replace(steering, coefficient=0.0).decided("add") is None
    oracle = oracle_gate(steering)
    assert oracle["injection"] is None
    for kind in ("benign", "lookalike"):
        assert oracle[kind].gate is None and oracle[kind].ablate and oracle[kind].ablate_from == gate.layer
        assert not oracle[kind].coefficient
    assert oracle["harmful"].gate is None and not oracle["harmful"].ablate
    with pytest.raises(ValueError, match="has none"):
        oracle_gate(Steering(direction))
    with pytest.raises(ValueError, match="decision must be"):
        steering.decided("refuse")


def test_gate_decides_again_after_a_tool_result(tiny_model, records, direction):
    conversation = next(r for r in records if any(m["role"] == "tool" for m in r.messages))
    first_turn = dataclasses.replace(conversation, messages=conversation.messages[:1])
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in (first_turn, conversation)]
    gate = HarmGate(torch.randn(tiny_model.d_model), 0.0, layer=1, threshold=0.5)
    with Steering(direction, gate=gate).apply(tiny_model) as handle:
        greedy_generate(tiny_model, prompts[:1], max_new_tokens=4)
        p_first = handle.harm_probability.clone()
        greedy_generate(tiny_model, prompts[1:], max_new_tokens=4)
        p_second = handle.harm_probability.clone()
    with Steering(direction, gate=gate).apply(tiny_model) as fresh:
        greedy_generate(tiny_model, prompts[1:], max_new_tokens=1)
    assert not torch.allclose(p_first, p_second)
    assert torch.allclose(p_second, fresh.harm_probability, atol=1e-5)


def test_a_gate_reading_several_layers_sums_their_reads(tiny_model, tiny_model_dir, prompts, direction, tmp_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    weight = torch.randn(2, tiny_model.d_model)
    reads = {}
    _forward(tiny_model, prompts, None, [(f"blocks.{layer}.hook_resid_post",
                                          lambda a, hook, layer=layer: reads.__setitem__(layer, a[:, -1]))
                                         for layer in (0, 1)])
    expected = torch.sigmoid(reads[0] @ weight[0] + reads[1] @ weight[1] + 0.1)
    gate = HarmGate(weight, 0.1, layer=1, threshold=float(expected.median()) + 1e-6, read_layers=(0, 1))
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")
    for model, run in ((tiny_model, lambda: _forward(tiny_model, prompts)), (hf, lambda: hf(**batch))):
        with torch.no_grad(), Steering(direction, gate=gate).apply(model) as handle:
            run()
        assert torch.allclose(handle.harm_probability, expected, atol=1e-5), type(model).__name__
        assert torch.equal(handle.decisions, expected < gate.threshold)
    path = save_config(Steering(direction, gate=gate), tmp_path / "cfg", method="gated", model=str(tiny_model_dir),
                       settings={})
    back = load_config(path, model=tiny_model)[0].gate
    assert back.read_layers == (0, 1) and torch.equal(back.weight, weight)
    with pytest.raises(ValueError, match="does not match its 1 read layers"):
        HarmGate(weight, 0.0, layer=1)
    with pytest.raises(ValueError, match="end at the gate layer 0"):
        HarmGate(weight, 0.0, layer=0, read_layers=(0, 1))


def test_hf_model_and_bridge_steer_alike(tiny_model_dir, tiny_model, prompts, direction):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")
    mask = batch["attention_mask"].bool()
    steering = Steering(direction)
    with torch.no_grad(), steering.apply(hf):
        hf_logits = hf(**batch).logits[mask]
    assert (hf_logits - _forward(tiny_model, prompts, steering)).abs().max() < 1e-4
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=direction.shape[0], n_head=2, vocab_size=64, eos_token_id=0,
                                      bos_token_id=0))
    with pytest.raises(ValueError, match="Llama-style decoder"):
        steering.patch(gpt2)


def test_config_round_trip_and_clear_errors(tiny_model, tiny_model_dir, direction, tmp_path):
    gate = HarmGate(torch.randn(tiny_model.d_model), 0.25, layer=1, threshold=0.3, add_threshold=0.9)
    steering = Steering(direction, gate=gate, write_targets=torch.arange(5.0), stream_targets=torch.arange(2.0),
                        one_sided=True, stream_only=True, add_layer=1, coefficient=2.0)
    path = save_config(steering, tmp_path / "cfg", method="gated", model=str(tiny_model_dir),
                       settings={"threshold": 0.3})
    back, config = load_config(path, model=tiny_model)
    assert torch.equal(back.direction, steering.direction) and torch.equal(back.gate.weight, gate.weight)
    g = back.gate
    assert (g.layer, g.threshold, g.add_threshold) == (1, 0.3, 0.9)
    assert (back.ablate_from, back.add_layer, back.coefficient) == (1, 1, 2.0)
    assert torch.equal(back.write_targets, torch.arange(5.0)) and back.one_sided and back.stream_only
    assert config["settings"] == {"threshold": 0.3}
    organism = load_model("organism:base", device="cpu")
    with pytest.raises(ValueError, match="d_model"):
        load_config(path, model=organism)
    wrong_model = save_config(steering, tmp_path / "other", method="gated", model="some/other-model", settings={})
    with pytest.raises(ValueError, match="made for model"):
        load_config(wrong_model, model=tiny_model)
    with pytest.raises(ValueError, match="width mismatch"):
        Steering(direction).patch(organism)
    saved = path.read_text()
    path.write_text(json.dumps(json.loads(saved) | {"ablate": "false"}))  # a hand edit with the value in quotes
    with pytest.raises(ValueError, match="field 'ablate' must be true or false, got 'false'"):
        load_config(path)
    path.write_text(saved)
    (tmp_path / "cfg" / "vectors.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="vector file"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="no steering config"):
        load_config(tmp_path / "nowhere")


def test_a_config_follows_its_weight_files_not_their_name(tiny_model, tiny_model_dir, direction, tmp_path):
    """The same files under another name take the config; a model trained again at the config's path does not."""
    import shutil

    from transformers import AutoModelForCausalLM

    from steering.export import check_exportable

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    path = save_config(Steering(direction), tmp_path / "cfg", method="global", model=str(copy), settings={})
    assert json.loads(path.read_text())["weights_digest"] == load_model(str(copy), device="cpu").source.digest()
    load_config(path, model=tiny_model)  # fitted on a copy of tiny_model's files
    retrained = AutoModelForCausalLM.from_pretrained(copy)
    with torch.no_grad():
        retrained.model.layers[1].mlp.down_proj.weight.add_(0.01)
    retrained.save_pretrained(copy)
    with pytest.raises(ValueError, match="fitted on other weights than .*copy.*trained or converted again"):
        load_config(path, model=load_model(str(copy), device="cpu"))
    load_config(path, model=tiny_model)  # the files it was fitted on are still tiny_model's
    check_exportable(path)
    with pytest.raises(ValueError, match="fitted on other weights"):
        export_orthogonalized(str(copy), path, tmp_path / "export")


def test_a_config_saved_in_the_first_format_loads_and_steers_the_same(tiny_model, tiny_model_dir, prompts,
                                                                        direction, tmp_path):
    """Format 1 kept the addition in the gate (`above_coefficient`) and called stream_only `gate_only`."""
    gate, _ = _gate_at_median(tiny_model, prompts)
    today = Steering(direction, gate=gate, one_sided=True, stream_only=True, add_layer=gate.layer, coefficient=3.0,
                     stream_targets=torch.tensor([0.2, -0.1]))
    path = save_config(today, tmp_path / "cfg", method="gated", model=str(tiny_model_dir), settings={})
    config = json.loads(path.read_text())
    for key in ("format", "ablate_from", "stream_only", "add_layer", "coefficient"):
        del config[key]
    config |= {"gate_only": True, "add_layer": None, "coefficient": 0.0}
    config["gate"]["above_coefficient"] = 3.0
    path.write_text(json.dumps(config))
    converted, upgraded = load_config(path, model=tiny_model)
    assert upgraded["format"] == 2 and (converted.ablate_from, converted.add_layer, converted.coefficient) == (0, 0, 3.0)
    assert converted.stream_only and converted.gate.threshold == gate.threshold
    assert torch.equal(converted.gate.weight, gate.weight)
    assert torch.equal(_forward(tiny_model, prompts, converted), _forward(tiny_model, prompts, today))
    config |= {"add_layer": 1, "coefficient": 1.0}
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no equivalent today"):
        load_config(path)


def test_mean_ablation_sets_every_write_to_its_target(tiny_model, prompts, direction):
    targets = torch.linspace(-0.3, 0.3, 1 + 2 * tiny_model.n_layers)
    steering = Steering(direction, write_targets=targets)
    seen = {}
    names = ["hook_embed"] + [f"blocks.{i}.hook_{s}" for i in range(tiny_model.n_layers) for s in ("attn_out", "mlp_out")]
    _forward(tiny_model, prompts, steering, [(n, lambda a, hook, n=n: seen.__setitem__(n, a.clone())) for n in names])
    for i, name in enumerate(names):
        assert torch.allclose(seen[name] @ steering.direction, torch.full_like(seen[name][..., 0], float(targets[i])),
                              atol=1e-5), name


@pytest.mark.parametrize("mean_ablation", [False, True])
def test_exported_checkpoint_equals_hook_ablation(tiny_model, tiny_model_dir, prompts, direction, tmp_path,
                                                  mean_ablation):
    from transformers import AutoModelForCausalLM

    targets = torch.linspace(-0.3, 0.3, 1 + 2 * tiny_model.n_layers) if mean_ablation else None
    steering = Steering(direction, write_targets=targets)
    config = save_config(steering, tmp_path / "cfg", method="global", model=str(tiny_model_dir), settings={})
    out = export_orthogonalized(str(tiny_model_dir), config, tmp_path / "export")
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    batch = encode_batch(tiny_model.tokenizer, prompts, "cpu")
    with torch.no_grad():
        baked = exported(**batch).logits[batch["attention_mask"].bool()]
    assert (baked - _forward(tiny_model, prompts, steering)).abs().max() < 1e-4
    reloaded = load_model(str(out), device="cpu")  # and the bridge boots it
    assert (reloaded.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])[batch["attention_mask"].bool()]
            - baked).abs().max() < 1e-4
    gated = save_config(Steering(direction, gate=HarmGate(direction, 0.0, 0)), tmp_path / "g", method="gated",
                        model=str(tiny_model_dir), settings={})
    with pytest.raises(ValueError, match="not a static ablation"):
        export_orthogonalized(str(tiny_model_dir), gated, tmp_path / "nope")
    with pytest.raises(ValueError, match="write_targets has"):
        Steering(direction, write_targets=torch.zeros(3)).patch(tiny_model)


def test_export_on_a_model_without_projection_biases(tiny_model_dir, prompts, direction, tmp_path):
    """Qwen2 has no attention_bias / mlp_bias switch: zero targets bake exactly, mean targets are refused clearly
    (they once exported silently without their biases)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    qwen_dir = tiny_checkpoint(Qwen2Config, tiny_model_dir, tmp_path / "qwen2")
    qwen = load_model(qwen_dir, device="cpu")
    zero = save_config(Steering(direction), tmp_path / "zero", method="global", model=qwen_dir, settings={})
    exported = AutoModelForCausalLM.from_pretrained(export_orthogonalized(qwen_dir, zero, tmp_path / "out"),
                                                    dtype=torch.float32).eval()
    batch = encode_batch(qwen.tokenizer, prompts, "cpu")  # a Qwen2 folder's tokenizer loads as Qwen2's own class
    with torch.no_grad():
        baked = exported(**batch).logits[batch["attention_mask"].bool()]
    assert (baked - _forward(qwen, prompts, Steering(direction))).abs().max() < 1e-4
    mean = save_config(Steering(direction, write_targets=torch.linspace(-0.3, 0.3, 5)), tmp_path / "mean",
                       method="global", model=qwen_dir, settings={})
    with pytest.raises(ValueError, match="Qwen2ForCausalLM can't hold a bias"):
        export_orthogonalized(qwen_dir, mean, tmp_path / "nope")


def test_plain_hf_steering_ablates_after_gemma2s_post_norms(tiny_model_dir, prompts, direction, tmp_path):
    """Gemma 2 adds *normed* attention and MLP outputs to the stream: hooks must sit after those norms, on the
    plain HF model as on the bridge; its weights can't hold the edit, so export refuses it."""
    from transformers import Gemma2Config

    from taxlens.models import load_serving_model

    gemma_dir = tiny_checkpoint(Gemma2Config, tiny_model_dir, tmp_path / "gemma2", head_dim=16)
    steering = Steering(direction, positions="all")
    logits = {}
    for engine, model in (("bridge", load_model(gemma_dir, device="cpu")), ("plain", load_serving_model(gemma_dir))):
        batch = encode_batch(model.tokenizer, prompts, "cpu")
        mask = batch["attention_mask"].bool()
        streams = {}
        hooks = [layer.register_forward_hook(lambda _m, _i, out, k=k: streams.__setitem__(k, out[0] if isinstance(
            out, tuple) else out)) for k, layer in enumerate(model.hf.model.layers)]
        with torch.no_grad(), steering.apply(model):
            logits[engine] = model.hf(**batch).logits[mask]
        for hook in hooks:
            hook.remove()
        for k, resid in streams.items():
            assert (resid[mask] @ steering.direction).abs().max() < 1e-4, (engine, k)
    assert (logits["bridge"] - logits["plain"]).abs().max() < 1e-4
    config = save_config(steering, tmp_path / "cfg", method="global", model=gemma_dir, settings={})
    with pytest.raises(ValueError, match="norms its attention and MLP outputs"):
        export_orthogonalized(gemma_dir, config, tmp_path / "nope")


def test_the_full_gated_grid_also_ablates_from_a_direction_layer_after_the_gate(tiny_model, records):
    from steering.fit import FittedVectors
    from steering.search import (ABLATION_VARIANTS, ADD_SCALES, ADD_THRESHOLDS, THRESHOLDS, first_token_logprobs,
                                 screen_gated)
    from taxlens.scoring import OpeningTokens

    torch.manual_seed(3)
    n, d_model = tiny_model.n_layers, tiny_model.d_model  # 2 layers: (direction, gate) pairs (0,0) (0,1) (1,0) (1,1)
    val = [r for r in records if r.split == "val"][::60]
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in val]
    kinds = [r.kind for r in val]
    unit = [torch.nn.functional.normalize(torch.randn(d_model), dim=0) for _ in range(n)]
    gates = [HarmGate(torch.randn(d_model) * 0.1, 0.0, layer) for layer in range(n)]
    fitted = FittedVectors(
        refusal=unit, refusal_norm=[1.0] * n, harm=unit, false_refusal_raw=unit, gates=gates,
        stacked_gates=gates[:1] + [HarmGate(torch.randn(2, d_model) * 0.1, 0.0, 1, read_layers=(0, 1))],
        write_means=torch.zeros(1 + 2 * n, d_model), stream_means=torch.zeros(n, d_model),
        complied_write_proj=torch.randn(n, 8, 1 + 2 * n), complied_stream_proj=torch.randn(n, 8, n))
    resid = [torch.randn(len(prompts), d_model) for _ in range(n)]
    with torch.no_grad():
        settings = screen_gated(tiny_model, prompts, kinds, fitted, resid, first_token_logprobs(tiny_model, prompts),
                                OpeningTokens((1,), (2,), "test"), positions=("last",), progress=False)
    starts = [(s.settings["direction_layer"], s.settings["gate_layer"], s.settings["ablate_from"]) for s in settings]
    assert set(starts) == {(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1, 1)}
    assert all(s.steering.ablate_from == s.settings["ablate_from"] for s in settings)
    per_start = len(ABLATION_VARIANTS) * (len(THRESHOLDS) + (len(ADD_SCALES) - 1) * sum(
        1 + sum(a > t for a in ADD_THRESHOLDS) for t in THRESHOLDS))
    gates_at = {0: 1, 1: 2}  # the gate reading layer 1 alone, and the one reading layers 0 and 1
    assert len(settings) == sum(gates_at[g] * per_start for _, g, _ in set(starts))
