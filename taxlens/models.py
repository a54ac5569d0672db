"""Loading a model by name: an HF id, a local checkpoint folder, or the shipped `organism:base` / `organism:defended`,
through `TransformerBridge.boot_transformers`, with device and dtype chosen automatically. For serving only,
`load_serving_model` loads the same checkpoint with plain `transformers`: the bridge wraps every module of the HF
model, which on the organism doubles generation time (`benchmarks/steer.py`), and steering needs no bridge.

Importing this module also mends TransformerLens 4.3's KV-cache bug with transformers ≥ 5 (the bridge's attention
reads the cache only from `past_key_values`, while Llama layers now pass it as `cache=`; without the mend every
decode step after the prefill attends only to itself). `tests/test_generation.py` checks cached and uncached greedy
generation agree.

>>> model = load_model("organism:defended")         # doctest: +SKIP
>>> model.bridge.cfg.n_layers                         # doctest: +SKIP
4
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

ORGANISM_DIR = Path(__file__).parent / "organism" / "checkpoints"
ORGANISM_NAMES = ("base", "defended")


def _mend_kv_cache() -> None:
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    original = AttentionBridge._update_kv_cache
    if getattr(original, "_taxlens_mended", False):
        return

    def _update_kv_cache(self, k, v, **kwargs):
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs["past_key_values"] = kwargs["cache"]
        return original(self, k, v, **kwargs)

    _update_kv_cache._taxlens_mended = True
    AttentionBridge._update_kv_cache = _update_kv_cache


_mend_kv_cache()


@dataclass
class LoadedModel:
    """A booted bridge with its tokenizer and the name it was asked for. `bridge.original_model` is the HF model."""

    name: str
    bridge: object
    tokenizer: object

    @property
    def hf(self):
        """The HF causal LM that generates (inside the bridge, so TransformerLens hooks fire in it)."""
        return self.bridge.original_model

    @property
    def context_limit(self) -> int:
        return int(getattr(self.bridge.cfg, "n_ctx", 0) or self.tokenizer.model_max_length)

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def d_model(self) -> int:
        return self.bridge.cfg.d_model

    @property
    def n_layers(self) -> int:
        return self.bridge.cfg.n_layers


def resolve(spec: str) -> str:
    """The path or HF id behind a model name; `organism:NAME` maps to the checkpoint shipped in the package."""
    if spec.startswith("organism:"):
        name = spec.split(":", 1)[1]
        if name not in ORGANISM_NAMES:
            raise ValueError(f"unknown organism {spec!r}; choose organism:base or organism:defended")
        path = ORGANISM_DIR / name
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{spec}: no checkpoint at {path}. Train it with `taxlens organism train --out {ORGANISM_DIR}`."
            )
        return str(path)
    return spec


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """bf16 on a GPU that supports it, fp32 elsewhere; a name such as "float16" or a torch dtype overrides."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use e.g. float32, bfloat16, float16")
        return value
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model(spec: str, *, device: str | None = None, dtype: str | torch.dtype | None = None) -> LoadedModel:
    """Boot `spec` through the bridge in eval mode; parameters are frozen (no autograd state is ever needed)."""
    from transformer_lens.model_bridge import TransformerBridge

    path = resolve(spec)
    device = pick_device(device)
    bridge = TransformerBridge.boot_transformers(path, device=device, dtype=pick_dtype(dtype, device))
    bridge.eval()
    for p in bridge.parameters():
        p.requires_grad_(False)
    tokenizer = bridge.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(spec, bridge, tokenizer)


@dataclass
class ServingModel:
    """An HF causal LM loaded by plain `transformers`, for generation: what `taxlens serve` runs by default.
    Steering reaches it through PyTorch forward hooks; analysis (probes, patching) needs `load_model`'s bridge."""

    name: str
    hf: object
    tokenizer: object

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def d_model(self) -> int:
        return self.hf.config.hidden_size

    @property
    def n_layers(self) -> int:
        return self.hf.config.num_hidden_layers

    @property
    def context_limit(self) -> int:
        return int(getattr(self.hf.config, "max_position_embeddings", 0) or self.tokenizer.model_max_length)


def load_serving_model(spec: str, *, device: str | None = None,
                       dtype: str | torch.dtype | None = None) -> ServingModel:
    """`spec` loaded by plain `transformers` (same resolution, device and dtype choice as `load_model`), eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(spec)
    device = pick_device(device)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, device)).to(device).eval()
    for p in hf.parameters():
        p.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return ServingModel(spec, hf, tokenizer)
