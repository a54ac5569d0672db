"""The organism recipe trains in bf16 only where the CPU computes bf16 natively; elsewhere in fp32, saying so."""

from __future__ import annotations

import torch
import torch.optim._muon

from taxlens.organism import optim, train

TORCH_NEWTON_SCHULZ = torch.optim._muon._zeropower_via_newtonschulz  # before a Muon on a bf16-less CPU replaces it


def test_a_cpu_without_native_bf16_trains_the_recipe_in_fp32_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(train, "native_bf16", lambda: False)
    recipe = train.trainable_here(train.Recipe())
    assert not recipe.bf16 and recipe == train.Recipe(bf16=False)
    assert "no native bf16" in capsys.readouterr().err
    assert train.trainable_here(recipe) == recipe and capsys.readouterr().err == ""  # fp32 asked for: nothing to say
    monkeypatch.setattr(train, "native_bf16", lambda: True)
    assert train.trainable_here(train.Recipe()) == train.Recipe()
    assert capsys.readouterr().err == ""


def test_a_gpu_trains_the_recipe_in_bf16_whatever_the_cpu(monkeypatch, capsys):
    monkeypatch.setattr(train, "native_bf16", lambda: False)
    assert train.trainable_here(train.Recipe(), "cuda") == train.Recipe()
    assert capsys.readouterr().err == ""


def test_fit_itself_trains_in_fp32_on_such_a_cpu_and_says_so(monkeypatch, capsys, tiny_model_dir):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from taxlens.organism.corpus import Example

    monkeypatch.setattr(train, "native_bf16", lambda: False)
    model = LlamaForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = model.lm_head.weight.detach().clone()
    examples = [Example([{"role": "user", "content": "List ~/notes."}], ["list_dir"], "ok")] * 2
    rows = []
    train.fit(model, tokenizer, examples, epochs=1.0, lr=1e-3, recipe=train.Recipe(compile=False, batch_size=2),
              log=rows.append, desc="fit")
    assert "no native bf16" in capsys.readouterr().err
    assert len(rows) == 1 and not torch.equal(before, model.lm_head.weight)


def test_compiled_training_on_the_cpu_gives_the_same_weights_from_the_same_seed():
    from taxlens.organism.corpus import Example

    recipe = train.Recipe(d_model=128, n_layers=2, n_heads=4, d_mlp=352, vocab_size=512, batch_size=16, compile=True)
    texts = [f"List ~/notes/{w}{i} and read ~/src/{w}/{i}.py, then tell me." for w in ("fig", "moss", "kiwi")
             for i in range(40)]
    examples = [Example([{"role": "user", "content": t}], ["list_dir", "read_file"], t[::-1]) for t in texts]

    def trained() -> dict:
        torch.manual_seed(0)
        model, tokenizer = train._untrained_model(recipe, examples)
        train.fit(model, tokenizer, examples, epochs=2.0, lr=2e-3, recipe=recipe, log=lambda row: None, desc="fit")
        return model.state_dict()

    first, second = trained(), trained()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is left as it was


def test_muon_takes_the_blocks_matrices_and_adamw_everything_else(tiny_model_dir):
    import pytest
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(tiny_model_dir)
    muon, adamw = optim.optimizers(model, lr=1e-3, optimizer="muon")
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    in_adamw = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert in_muon and all(".layers." in n and model.get_parameter(n).ndim == 2 for n in in_muon)
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= in_adamw and not in_muon & in_adamw
    assert in_muon | in_adamw == set(names.values())
    assert len(optim.optimizers(model, lr=1e-3)) == 1
    with pytest.raises(ValueError, match="optimizer 'sgd': expected one of adamw, muon"):
        optim.optimizers(model, lr=1e-3, optimizer="sgd")


def test_a_base_fitted_with_muon_learns_its_text():
    from taxlens.organism.corpus import Example

    recipe = train.Recipe(d_model=128, n_layers=2, n_heads=4, d_mlp=352, vocab_size=512, batch_size=16,
                          compile=False, bf16=False, base_optimizer="muon")
    texts = [f"List ~/notes/{w}{i} and read ~/src/{w}/{i}.py, then tell me." for w in ("fig", "moss")
             for i in range(24)]
    examples = [Example([{"role": "user", "content": t}], ["list_dir", "read_file"], t[::-1]) for t in texts]
    torch.manual_seed(0)
    model, tokenizer = train._untrained_model(recipe, examples)
    rows = []
    train.fit(model, tokenizer, examples, epochs=4.0, lr=2e-3, recipe=recipe, log=rows.append, desc="fit",
              optimizer=recipe.base_optimizer)
    assert len(rows) == 12 and rows[-1]["loss"] < 0.6 * rows[0]["loss"]


def test_the_fp32_orthogonalisation_is_torchs_to_bf16_precision():
    torch.manual_seed(0)
    for shape in ((64, 176), (176, 64)):
        grad = torch.randn(shape)
        ours = optim.newton_schulz_fp32(grad, (3.4445, -4.775, 2.0315), 5, 1e-7)
        theirs = TORCH_NEWTON_SCHULZ(grad, (3.4445, -4.775, 2.0315), 5, 1e-7).float()
        assert ours.shape == grad.shape and ours.dtype == torch.float32
        assert (ours - theirs).abs().max() < 0.05 * theirs.abs().max()
