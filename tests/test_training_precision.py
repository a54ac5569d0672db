"""The organism recipe trains in bf16 only where the CPU computes bf16 natively; elsewhere in fp32, saying so."""

from __future__ import annotations

import torch

from taxlens.organism import train


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
