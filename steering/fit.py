"""What each steering method needs, fitted on one split of a defended model's activation cache (residual stream
after every block, last prompt token): per layer, the refusal direction, the harm direction, the false-refusal
vector, and the harmfulness gate's probe.

  refusal        mean(prompts the defended model refuses) − mean(prompts it complies with)
  harm           mean(harmful) − mean(lookalike)
  false_refusal  mean(lookalike) − mean(benign), orthogonalised against harm with a partial coefficient λ
                 (Wang et al., ICLR 2025): v − λ (v·ĥ) ĥ
  gate           a logistic probe, harmful or injected prompts (1) vs benign or lookalike ones (0), mapped back to
                 raw activation space so it reads the residual stream directly: one reading the stream after
                 block L alone (`gates[L]`), one reading it after every block up to L (`stacked_gates[L]`)
  targets        the mean, over prompts the model complies with, of every residual write (embeddings, each block's
                 attention and MLP output) and of the stream after each block: what mean ablation sets a
                 direction's projection to (`Steering.write_targets`, `Steering.stream_targets`); for the refusal
                 directions also an upper quantile of those prompts' projections, which one-sided ablation
                 clamps to: it lowers only what lies above the range the model complies in

The cache must hold `resid_post.L` for every layer and the writes `hook_embed`, `attn_out.L`, `mlp_out.L`
(`write_hooks`).

>>> fitted = fit_vectors(store, split="train")                             # doctest: +SKIP
>>> fitted.gates[1].probability(resid)                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probes.cache import ActivationStore
from probes.directions import mean_diff
from probes.layers import concept_labels
from probes.linear import LinearProbe
from steering.gate import HarmGate
from taxlens.hooks import write_hooks

GATE_POSITIVE = ("harmful", "injection")


@dataclass(frozen=True)
class FittedVectors:
    """Per layer (residual after block L): unit directions [d_model], the refusal mean difference's norm (the
    natural scale for adding the direction), and the gate probes reading layer L (`gates`) and layers 0..L
    (`stacked_gates`; threshold 0.5 until a search sets one);
    write_means: [1 + 2·n_layers, d_model] and stream_means: [n_layers, d_model] over complied prompts;
    complied_write_proj: [n_layers (direction), n_complied, 1 + 2·n_layers] and complied_stream_proj: [n_layers
    (direction), n_complied, n_layers], complied prompts' projections on each layer's refusal direction."""

    refusal: list[torch.Tensor]
    refusal_norm: list[float]
    harm: list[torch.Tensor]
    false_refusal_raw: list[torch.Tensor]
    gates: list[HarmGate]
    stacked_gates: list[HarmGate]
    write_means: torch.Tensor
    stream_means: torch.Tensor
    complied_write_proj: torch.Tensor
    complied_stream_proj: torch.Tensor

    def targets(self, direction: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean-ablation targets of `direction`: the Steering keyword arguments write_targets, stream_targets."""
        r = direction.float() / direction.float().norm()
        return {"write_targets": self.write_means @ r, "stream_targets": self.stream_means @ r}

    def refusal_targets(self, layer: int, quantile: float | None = None) -> dict[str, torch.Tensor]:
        """Targets for ablating `layer`'s refusal direction: the complied mean (None, as `targets`), or the
        `quantile` of complied prompts' projections at every write and stream point."""
        if quantile is None:
            return self.targets(self.refusal[layer])
        return {"write_targets": torch.quantile(self.complied_write_proj[layer], quantile, dim=0),
                "stream_targets": torch.quantile(self.complied_stream_proj[layer], quantile, dim=0)}

    def false_refusal(self, layer: int, lam: float) -> torch.Tensor:
        """The false-refusal vector at `layer` with λ of its harm component removed, unit norm."""
        v, h = self.false_refusal_raw[layer], self.harm[layer]
        v = v - lam * (v @ h) * h
        return v / v.norm()


def gate_probe(acts: torch.Tensor, y: np.ndarray, read_layers: tuple[int, ...], C: float = 0.01) -> HarmGate:
    """Fit a `LinearProbe` on acts: [n, len(read_layers), d_model] (the streams after those blocks, concatenated)
    and express it as Σ weight[l] · resid_l + bias on the raw activations. Strong regularisation (C = 0.01): the
    gate runs at low thresholds, where calibration matters more than fit."""
    flat = acts.reshape(len(acts), -1).numpy()
    weight, bias = LinearProbe(C=C).fit(flat, y).raw_affine()
    return HarmGate(torch.tensor(weight, dtype=torch.float32).reshape(acts.shape[1:]), bias, read_layers[-1],
                    read_layers=read_layers)


def fit_vectors(store: ActivationStore, split: str = "train", position: int = -1,
                extra_gate: tuple[torch.Tensor, np.ndarray] | None = None) -> FittedVectors:
    """`extra_gate`: more rows for the gate probes alone, (streams: [n, n_layers, d_model] after every block, labels:
    [n]), such as the turns of agent tasks (`steering.pipeline.agent_turn_streams`)."""
    rows_refusal, y_refusal = concept_labels(store, "refusal", split)
    rows_harm, y_harm = concept_labels(store, "harm", split)
    rows_trigger, y_trigger = concept_labels(store, "trigger", split)
    gate_rows = store.select(split=split)
    y_gate = np.array([store.records[i]["kind"] in GATE_POSITIVE for i in gate_rows], dtype=int)
    if extra_gate is not None:
        y_gate = np.concatenate([y_gate, np.asarray(extra_gate[1], dtype=int)])
    layer_hooks = [h for h in store.hooks if h.startswith("resid_post.")]
    writes = write_hooks(len(layer_hooks))
    missing = [h for h in writes if h not in store.hooks]
    if missing:
        raise ValueError(f"{store.dir}: the cache lacks the residual writes {missing} that mean ablation needs")
    complied = [i for i in store.select(split=split) if store.records[i]["refusal_score"] <= 0]
    write_means = torch.stack([store.load(h, position, complied).mean(0) for h in writes])
    stream_means = torch.stack([store.load(h, position, complied).mean(0) for h in layer_hooks])
    refusal, refusal_norm, harm, false_refusal, gates = [], [], [], [], []
    gate_streams = [store.load(hook, position, gate_rows) for hook in layer_hooks]  # per layer [n, d_model]
    if extra_gate is not None:
        gate_streams = [torch.cat([s, extra_gate[0][:, layer].to(s.dtype)]) for layer, s in enumerate(gate_streams)]
    for layer, hook in enumerate(layer_hooks):
        acts = store.load(hook, position, rows_refusal)
        pos, neg = acts[torch.from_numpy(y_refusal == 1)], acts[torch.from_numpy(y_refusal == 0)]
        refusal.append(mean_diff(pos, neg))
        refusal_norm.append(float((pos.double().mean(0) - neg.double().mean(0)).norm()))
        acts = store.load(hook, position, rows_harm)
        harm.append(mean_diff(acts[torch.from_numpy(y_harm == 1)], acts[torch.from_numpy(y_harm == 0)]))
        acts = store.load(hook, position, rows_trigger)
        diff = acts[torch.from_numpy(y_trigger == 1)].mean(0) - acts[torch.from_numpy(y_trigger == 0)].mean(0)
        false_refusal.append(diff)
        gates.append(gate_probe(gate_streams[layer][:, None], y_gate, (layer,)))
    directions = torch.stack(refusal).float()  # [n_layers, d_model]

    def projections(hooks: list[str]) -> torch.Tensor:  # [n_layers (direction), n_complied, len(hooks)]
        per_hook = [store.load(h, position, complied).float() @ directions.T for h in hooks]  # [n_complied, n_layers]
        return torch.stack(per_hook, -1).transpose(0, 1)

    stacked_gates = gates[:1] + [gate_probe(torch.stack(gate_streams[:layer + 1], 1), y_gate, tuple(range(layer + 1)))
                                 for layer in range(1, len(layer_hooks))]
    return FittedVectors(refusal, refusal_norm, harm, false_refusal, gates, stacked_gates, write_means, stream_means,
                         projections(writes), projections(layer_hooks))
