"""The organism base's optimisers: AdamW, or Muon on the blocks' weight matrices (`Recipe.base_optimizer`).

>>> [type(o).__name__ for o in optimizers(model, lr=2e-3, optimizer="muon")]     # doctest: +SKIP
['Muon', 'AdamW']
"""

from __future__ import annotations

import functools

import torch

OPTIMIZERS = ("adamw", "muon")


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU has native bf16 matmul kernels (oneDNN: AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def optimizers(model, *, lr: float, optimizer: str = "adamw") -> list[torch.optim.Optimizer]:
    """The optimisers of one training phase: AdamW over every trainable weight, or with `optimizer="muon"` Muon over
    the transformer blocks' 2-D weight matrices (the Moonlight setting, `adjust_lr_fn="match_rms_adamw"`, so both
    share `lr` and the weight decay) and AdamW over the rest (embeddings, norms, the unembedding)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if optimizer == "adamw":
        return [torch.optim.AdamW([p for _, p in params], lr=lr, weight_decay=0.05, betas=(0.9, 0.98))]
    if optimizer != "muon":
        raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if next(model.parameters()).device.type == "cpu" and not native_bf16():
        from torch.optim import _muon

        _muon._zeropower_via_newtonschulz = newton_schulz_fp32
    matrices = [p for n, p in params if p.ndim == 2 and ".layers." in n]
    rest = [p for n, p in params if not (p.ndim == 2 and ".layers." in n)]
    return [torch.optim.Muon(matrices, lr=lr, weight_decay=0.05, adjust_lr_fn="match_rms_adamw"),
            torch.optim.AdamW(rest, lr=lr, weight_decay=0.05, betas=(0.9, 0.98))]


def newton_schulz_fp32(grad, ns_coefficients, ns_steps, eps):
    """torch's Muon orthogonalisation (`torch.optim._muon._zeropower_via_newtonschulz`: the same coefficients and
    steps) in fp32. torch runs it in bf16, which a CPU without native bf16 kernels emulates: 10 s a step at the
    recipe's widths on two AVX2 cores, against 2 s for the step itself."""
    a, b, c = ns_coefficients
    x = grad.float().T if grad.size(0) > grad.size(1) else grad.float()
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x
