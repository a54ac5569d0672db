"""PEFT adapters load wherever a model does: merged at a scale, found from their own folder, named in configs."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import torch

from conftest import DATA

from taxlens.chat import render_prompt
from taxlens.generation import encode_batch
from taxlens.models import ModelSource, load_model, load_serving_model


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with random (non-zero) up-projections on the tiny Llama, saved as PEFT saves adapters."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(1)
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(hf, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                               init_lora_weights=False))
    peft_model.save_pretrained(out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    return out


@pytest.fixture(scope="module")
def batch(records, tiny_model):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in records[:3]]
    return encode_batch(tiny_model.tokenizer, prompts, "cpu")


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        if hasattr(model, "bridge"):
            out = model.bridge(batch["input_ids"], attention_mask=batch["attention_mask"])
        else:
            out = model.hf(**batch).logits
    return out[batch["attention_mask"].bool()]


def test_an_adapter_folder_loads_as_its_base_plus_the_merged_adapter(tiny_model_dir, adapter_dir, batch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                          adapter_dir).eval()
    with torch.no_grad():
        expected = reference(**batch).logits[batch["attention_mask"].bool()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = load_model(str(adapter_dir), device="cpu")  # the base is read from adapter_config.json
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]  # library noise, not the user's
    assert found.source == ModelSource(str(tiny_model_dir), str(adapter_dir), 1.0)
    assert found.name == f"{tiny_model_dir} + {adapter_dir}"
    assert (_logits(found, batch) - expected).abs().max() < 1e-4
    explicit = load_serving_model(str(tiny_model_dir), adapter=str(adapter_dir))
    assert (_logits(explicit, batch) - expected).abs().max() < 1e-4


def test_adapter_scale_runs_from_the_base_to_the_adapter(tiny_model, tiny_model_dir, adapter_dir, batch):
    base = _logits(tiny_model, batch)
    full = _logits(load_model(str(adapter_dir), device="cpu"), batch)
    zero = _logits(load_model(str(adapter_dir), device="cpu", adapter_scale=0.0), batch)
    half = load_model(str(tiny_model_dir), adapter=str(adapter_dir), adapter_scale=0.5, device="cpu")
    assert half.name.endswith("x 0.5")
    assert (zero - base).abs().max() < 1e-5
    assert (full - base).abs().max() > 1e-2
    gap = lambda x: (x - base).abs().max().item()  # noqa: E731
    assert 0.2 * gap(full) < gap(_logits(half, batch)) < 0.8 * gap(full)


def test_adapter_errors_say_what_the_folder_is_and_how_to_load_it(tiny_model_dir, adapter_dir, tmp_path):
    with pytest.raises(ValueError, match="without an adapter"):
        ModelSource.of(str(tiny_model_dir), adapter_scale=0.5)
    with pytest.raises(ValueError, match="adapter_scale nan: not a number a scale can be"):
        ModelSource.of(str(adapter_dir), adapter_scale=float("nan"))
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        ModelSource.of(str(tiny_model_dir), adapter=str(tmp_path))
    moved = tmp_path / "orphan"
    moved.mkdir()
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/nowhere/llama"}))
    with pytest.raises(FileNotFoundError, match=r"PEFT adapter for '/nowhere/llama'.*--adapter"):
        ModelSource.of(str(moved))


def _saved_adapter(base_dir, out, added_token=None):
    """A LoRA adapter that also trains `lm_head` in full (PEFT's `modules_to_save`), optionally on the base with a
    token added, saved as PEFT saves it (the embedding and tokenizer beside the adapter when a token was added)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(2)
    hf = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    saved = ["lm_head"]
    if added_token:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        tokenizer.add_special_tokens({"additional_special_tokens": [added_token]})
        hf.resize_token_embeddings(len(tokenizer))
        saved.append("embed_tokens")
        tokenizer.save_pretrained(out)
    peft_model = get_peft_model(hf, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               modules_to_save=saved, init_lora_weights=False))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                param.add_(0.5 * torch.randn_like(param))
    peft_model.save_pretrained(out)
    return out


def _cache_on_hub(folder, repo_id, cache):
    """`folder`'s files as the HF cache holds a downloaded repo: a snapshot under `models--ORG--NAME`."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return repo / "snapshots" / "0123abcd"


def test_an_adapter_published_on_the_hub_loads_from_the_cache_as_an_adapter(tiny_model_dir, adapter_dir, batch,
                                                                           tmp_path, monkeypatch):
    """As Meta-SecAlign-8B is published: an adapter repo naming its base by hub id; nothing is downloaded."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    _cache_on_hub(tiny_model_dir, "acme/tiny-llama", tmp_path)
    snapshot = _cache_on_hub(adapter_dir, "acme/tiny-defended", tmp_path)
    config = json.loads((snapshot / "adapter_config.json").read_text())
    (snapshot / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "acme/tiny-llama"}))
    found = load_model("acme/tiny-defended", device="cpu")
    assert found.source == ModelSource("acme/tiny-llama", "acme/tiny-defended", 1.0)
    assert found.name == "acme/tiny-llama + acme/tiny-defended"
    assert torch.equal(_logits(found, batch), _logits(load_model(str(adapter_dir), device="cpu"), batch))
    assert found.source.digest() == ModelSource.of(str(adapter_dir)).digest()  # the same files, another name
    with pytest.raises(FileNotFoundError, match="acme/not-cached: not a local folder"):
        load_model("acme/not-cached", device="cpu")


def test_a_fully_trained_module_scales_with_the_adapter(tiny_model, tiny_model_dir, batch, tmp_path):
    adapter = str(_saved_adapter(tiny_model_dir, tmp_path / "lm-head"))
    base = _logits(tiny_model, batch)
    full = _logits(load_model(adapter, device="cpu"), batch)
    half = _logits(load_model(adapter, device="cpu", adapter_scale=0.5), batch)
    assert (_logits(load_model(adapter, device="cpu", adapter_scale=0.0), batch) - base).abs().max() < 1e-5
    gap = lambda x: (x - base).abs().max().item()  # noqa: E731
    assert gap(full) > 1e-1 and 0.2 * gap(full) < gap(half) < 0.8 * gap(full)


def test_an_adapter_trained_with_added_tokens_loads_with_its_tokens(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = _saved_adapter(tiny_model_dir, tmp_path / "tokens", added_token="<|input|>")
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    hf.resize_token_embeddings(hf.get_input_embeddings().weight.shape[0] + 1)
    reference = PeftModel.from_pretrained(hf, adapter).eval()
    found = load_model(str(adapter), device="cpu")
    new_id = found.tokenizer.convert_tokens_to_ids("<|input|>")
    ids = torch.tensor([[1, 5, 9, new_id]])
    with torch.no_grad():
        assert (found.bridge(ids) - reference(ids).logits).abs().max() < 1e-4
    assert new_id == hf.get_input_embeddings().weight.shape[0] - 1


def test_a_steering_config_names_the_adapter_and_its_scale(tiny_model_dir, adapter_dir, tmp_path):
    from steering.config import load_config, save_config
    from steering.hooks import Steering

    steered = load_model(str(adapter_dir), device="cpu", adapter_scale=0.5)
    steering = Steering(torch.nn.functional.normalize(torch.randn(steered.d_model), dim=0))
    path = save_config(steering, tmp_path / "cfg", method="global", model=steered.source, settings={})
    config = json.loads(path.read_text())
    assert (config["model"], config["adapter"], config["adapter_scale"]) == (str(tiny_model_dir), str(adapter_dir), 0.5)
    load_config(path, model=steered)
    with pytest.raises(ValueError, match=r"made for model .* x 0.5"):
        load_config(path, model=load_model(str(adapter_dir), device="cpu"))


def test_eval_takes_an_adapter_on_the_command_line(tiny_model_dir, adapter_dir, tmp_path):
    from taxlens.cli import main

    out = tmp_path / "report.json"
    assert main(["eval", "--model", str(tiny_model_dir), "--adapter", str(adapter_dir), "--adapter-scale", "0.5",
                 "--data", str(DATA), "--split", "test", "--limit", "4", "--max-new-tokens", "4",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["model"] == f"{tiny_model_dir} + {adapter_dir} x 0.5"


def test_a_model_that_is_not_there_is_named_before_anything_loads(tmp_path, monkeypatch):
    import transformers

    (tmp_path / "notes.txt").write_text("not a model")
    cases = {str(tmp_path / "missing"): "no such model folder", str(tmp_path / "notes.txt"): "a file, not a model folder",
             str(tmp_path): "a folder with neither config.json (an HF checkpoint) nor adapter_config.json"}
    for spec, problem in cases.items():
        with pytest.raises(FileNotFoundError, match=re.escape(f"{spec}: {problem}")):
            load_model(spec)

    def online(*args, **kwargs):  # the hub would be asked (and retried for a minute without a network)
        raise AssertionError("from_pretrained called for a model not on this machine")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", online)
    with pytest.raises(FileNotFoundError, match=r"someone/some-model: not a local folder, nor .* cache.*HF_HOME"):
        load_model("someone/some-model")


def test_a_device_torch_cannot_use_here_is_named_before_anything_loads(monkeypatch):
    import torch

    from taxlens.models import pick_device

    with pytest.raises(ValueError, match="'gpu': not a device torch knows"):
        pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="cuda: torch sees no CUDA GPU"):
        load_model("organism:base", device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="cuda:1: this machine has 1 CUDA GPU"):
        pick_device("cuda:1")
    assert pick_device("cuda:0") == "cuda:0" and pick_device("cpu") == "cpu"
