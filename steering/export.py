"""Baking a static steering edit into the weights: directional ablation as weight orthogonalisation.

Every matrix that writes the residual stream loses its component along r: the embedding rows (E ← E − (E r) rᵀ),
and each block's attention output and MLP down projections (W ← W − r (rᵀ W)), so the residual stream never holds
r — the same model as hook ablation at every write point. Non-zero targets (mean ablation) become constants: the
embedding rows get t_embed · r, and the output and down projections a bias t · r (the checkpoint then declares
`attention_bias` / `mlp_bias`, with zero biases on the other projections; a model whose config has no such switch,
Qwen2 for one, takes zero targets only, and says so). The result is a plain HF checkpoint (safetensors and
tokenizer) that `transformers` and vLLM load as they would the original. A gated config depends on the input and
can't be baked; nor can activation addition on a Llama without biases, nor an edit of the last prompt token only.
Weights edit every position: on a prompt (one forward pass) the checkpoint equals the hooks of a `positions`
"prompt" or "all" config, and in generation it equals "all" — the reply's tokens are edited too.

>>> export_orthogonalized("organism:defended", "runs/steer/steer.json", "runs/export")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch

from steering.config import check_source, config_path, load_config
from steering.hooks import residual_writes
from taxlens.models import ModelSource, load_hf_model, pick_dtype


def _with_biases(hf_model):
    """A copy of the model whose attention and MLP projections have (zero) biases, weights kept."""
    from transformers import AutoModelForCausalLM

    config = hf_model.config.__class__.from_dict({**hf_model.config.to_dict(), "attention_bias": True,
                                                  "mlp_bias": True})
    biased = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, param in biased.named_parameters():
            if name.endswith(".bias"):
                param.zero_()
    missing, unexpected = biased.load_state_dict(hf_model.state_dict(), strict=False)
    if unexpected or any(not k.endswith(".bias") for k in missing):
        raise RuntimeError(f"could not carry the weights over: missing {missing}, unexpected {unexpected}")
    if any(linear.bias is None for linear in _writes(biased)):
        raise ValueError(f"{type(hf_model).__name__} can't hold a bias on its attention output and MLP down "
                         f"projections (its config has no attention_bias / mlp_bias switch), so this config's "
                         f"mean targets can't be baked into its weights; serve it with hooks (`taxlens serve "
                         f"--steer`), or save and export a `Steering` without `write_targets` (ablation to 0)")
    return biased.eval()


def _writes(hf_model) -> list:
    """The linear layers that write the residual stream: each block's attention output and MLP down projection."""
    try:
        layers = hf_model.model.layers
        writes = [(layer, layer.self_attn.o_proj, layer.mlp.down_proj) for layer in layers]
    except AttributeError:
        raise ValueError(f"exporting needs a Llama-style decoder (model.layers[i].self_attn.o_proj, mlp.down_proj); "
                         f"{type(hf_model).__name__} is laid out otherwise: serve it with hooks instead") from None
    if any(residual_writes(layer) != (layer.self_attn, layer.mlp) for layer, _, _ in writes):
        raise ValueError(f"{type(hf_model).__name__} norms its attention and MLP outputs before adding them to the "
                         f"residual stream (an elementwise scale), so no edit of the projections removes the "
                         f"direction from what is added; serve it with hooks (`taxlens serve --steer`)")
    return [w for _, o_proj, down_proj in writes for w in (o_proj, down_proj)]


@torch.no_grad()
def orthogonalize_(hf_model, direction: torch.Tensor, write_targets: torch.Tensor | None = None):
    """Set every residual-stream write's projection on `direction` (unit, [d_model]) to its target (0 without
    `write_targets`, [1 + 2·n_layers]). In place without targets; with them, returns a biased copy."""
    writes = _writes(hf_model)  # a clear error, before anything is changed, for a model laid out otherwise
    if write_targets is not None and bool(write_targets.abs().max() > 0):
        hf_model = _with_biases(hf_model)
        writes = _writes(hf_model)
    inner = hf_model.model
    embed = inner.embed_tokens.weight  # [vocab, d_model]
    r = direction.to(embed.device, torch.float32)
    target = (lambda i: 0.0) if write_targets is None else (lambda i: float(write_targets[i]))
    if hf_model.config.tie_word_embeddings:  # keep the unembedding as it was
        hf_model.lm_head.weight = torch.nn.Parameter(hf_model.lm_head.weight.detach().clone())
        hf_model.config.tie_word_embeddings = False
    embed.copy_((embed.float() - torch.outer(embed.float() @ r - target(0), r)).to(embed.dtype))
    for index, linear in enumerate(writes, start=1):  # write index: 1 + 2·layer (+1 for the MLP)
        w = linear.weight  # [d_model, d_in]
        w.copy_((w.float() - torch.outer(r, r @ w.float())).to(w.dtype))
        if linear.bias is not None:
            b = linear.bias.float()
            linear.bias.copy_((b - (b @ r - target(index)) * r).to(linear.bias.dtype))
    return hf_model


def check_exportable(steer_config: str | Path):
    """The config's `Steering` and dict, once it is known to be an edit weights can hold: a static ablation of
    every position (a gate, a clamp, an addition or the last position alone depend on the input)."""
    steering, config = load_config(steer_config)
    if (steering.gate is not None or not steering.ablate or steering.ablate_from is not None or steering.one_sided
            or steering.positions == "last"
            or (steering.add_layer is not None and steering.coefficient)):
        raise ValueError(f"{steer_config}: this config is not a static ablation of every position (method "
                         f"{config['method']!r}, positions {steering.positions!r}); only global and false_refusal "
                         f"configs steering 'prompt' or 'all' positions can be baked into weights — serve the others "
                         f"with `taxlens serve`")
    return steering, config


def export_orthogonalized(model: str | ModelSource, steer_config: str | Path, out: str | Path, *,
                          dtype: str = "float32") -> Path:
    """Write `model` with the config's direction orthogonalised out of its weights to `out` (an HF checkpoint).

    The edit is computed in fp32 and saved in `dtype` (float32 keeps its logits equal to hook ablation's; a 16-bit
    dtype halves the size at the cost of rounding)."""
    from transformers import AutoTokenizer

    steering, config = check_exportable(steer_config)
    source = model if isinstance(model, ModelSource) else ModelSource.of(model)
    check_source(config, source, config_path(steer_config))
    hf, tokenizer_dir = load_hf_model(source, "cpu", torch.float32)
    if hf.config.hidden_size != steering.d_model:
        raise ValueError(f"{steer_config}: d_model {steering.d_model}, but {model} has {hf.config.hidden_size}")
    hf = orthogonalize_(hf, steering.direction, steering.write_targets)
    out = Path(out)
    hf.to(pick_dtype(dtype, "cpu")).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    (out / "taxlens_steer.json").write_text(config_path(steer_config).read_text())
    return out
