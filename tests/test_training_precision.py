"""The organism recipe trains in bf16 only where the CPU computes bf16 natively; elsewhere in fp32, saying so."""

from __future__ import annotations

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

