"""When to steer: a harmfulness gate, a linear probe read on the unsteered residual stream at a prompt's last token,
with the thresholds that send a row to the ablation, to the addition, or to neither.

>>> gate = HarmGate(weight, bias, layer=3, threshold=0.3, add_threshold=0.9)  # doctest: +SKIP
>>> ablate, add = gate.decide(gate.probability(resid))   # resid: [batch, d_model]    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class HarmGate:
    """When to steer: a linear harmfulness probe in raw activation space, p(harmful) = sigmoid(Σ_l weight[l] ·
    resid_l + bias), resid_l the stream after block l at the prompt's last token, for l in `read_layers` (None:
    `layer` alone; else ascending, ending at `layer`, where the gate decides). weight: [len(read_layers), d_model]
    (a [d_model] weight is read as one layer's). Rows below `threshold` get the steering's ablation; rows at or
    above `add_threshold` (None: `threshold`) its addition; rows in between neither."""

    weight: torch.Tensor
    bias: float
    layer: int
    threshold: float = 0.5
    add_threshold: float | None = None
    read_layers: tuple[int, ...] | None = None

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} is not a probability in [0, 1]; to steer every row, "
                             f"use no gate")
        if self.add_threshold is not None and not self.threshold <= self.add_threshold <= 1.0:
            raise ValueError(f"add_threshold {self.add_threshold} must lie in [threshold {self.threshold}, 1]: a row "
                             f"can't be both ablated and have the direction added")
        reads = tuple(int(x) for x in self.read_layers) if self.read_layers is not None else (self.layer,)
        if list(reads) != sorted(set(reads)) or reads[-1] != self.layer or reads[0] < 0:
            raise ValueError(f"read_layers {reads} must ascend without repeats from layer 0 or later and end at the "
                             f"gate layer {self.layer}")
        weight = self.weight.unsqueeze(0) if self.weight.ndim == 1 else self.weight
        if weight.ndim != 2 or weight.shape[0] != len(reads):
            raise ValueError(f"gate weight of shape {tuple(self.weight.shape)} does not match its {len(reads)} read "
                             f"layers {reads}: expected [{len(reads)}, d_model]")
        object.__setattr__(self, "read_layers", reads)
        object.__setattr__(self, "weight", weight)

    def probability(self, resid: torch.Tensor) -> torch.Tensor:
        """resid: [batch, len(read_layers), d_model] (or [batch, d_model] for one read layer) → [batch]
        probability that the prompt is harmful."""
        resid = resid.unsqueeze(1) if resid.ndim == 2 else resid
        return torch.sigmoid(torch.einsum("bld,ld->b", resid.float(), self.weight.to(resid.device)) + self.bias)

    def at(self, threshold: float) -> "HarmGate":
        """This gate passing (to the ablation) what it reads below `threshold`; an add threshold below that rises to
        it, so no row is both passed and added to."""
        add = None if self.add_threshold is None else max(self.add_threshold, threshold)
        return replace(self, threshold=threshold, add_threshold=add)

    def decide(self, harm_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """harm_p: [batch] → ([batch] rows to ablate, [batch] rows to add the direction to)."""
        add_from = self.threshold if self.add_threshold is None else self.add_threshold
        return harm_p < self.threshold, harm_p >= add_from
