"""Steering a model at inference: directional ablation, activation addition, and a harmfulness gate that decides
per sequence, as one small value object with an `apply(model)` context manager and a `patch(model)` handle.

`Steering` holds two things apart. **What** is done to the stream: ablating a direction and/or adding it. **When**
it is done: to every row (no gate) or, with a `HarmGate`, per row by a fitted harmfulness probe.

Ablation acts at every point that writes the residual stream — the embeddings and each block's attention and MLP
outputs (never `hook_resid_mid`, which does not write it): each write's projection on the direction is set to a
target. Targets of 0 are directional ablation (Arditi et al. 2024). A defended model's stream can sit far from 0
along its refusal direction for every prompt, refused or not, and zeroing it then pushes *towards* refusal; so the
targets are usually each write's mean projection over prompts the model complies with (mean ablation along the
direction, fitted in `steering.fit`). `one_sided` only lowers projections above the target, never raises them.
With `ablate_from = L` the ablation starts later: the stream after block L is set to its target there
(`stream_targets`) and, unless `stream_only`, so is every later write. Addition adds `coefficient · direction` to
the stream after block `add_layer`.

A gate reads the unsteered residual stream at each prompt's last token after block `gate.layer` (and, for a gate
fitted on several layers, after each of its `read_layers`) and decides per row: below its threshold the row gets
the ablation (which then starts at the gate's layer); at or above its add threshold, the addition; in between,
nothing — so that prompts the gate is unsure of are left alone rather than pushed to refuse. A decision holds while
the same prompt is being continued (KV-cached decode steps, or uncached steps that grow the sequence by one token)
and is taken again for any new prompt — a new request or a new turn after a tool result.

Works on a `LoadedModel` / `TransformerBridge` (TransformerLens hooks) and on a plain HF Llama-style model (PyTorch
forward hooks), in forward passes and in generation with or without the KV cache.

>>> steer = Steering(direction=refusal_dir)                               # global ablation   # doctest: +SKIP
>>> with steer.apply(model):                                                                  # doctest: +SKIP
...     replies = greedy_generate(model, prompts)
>>> gated = Steering(direction=refusal_dir, gate=HarmGate(weight, bias, layer=1, threshold=0.5))  # doctest: +SKIP
>>> handle = gated.patch(model); ...; handle.remove()                                         # doctest: +SKIP
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from steering.gate import HarmGate
from taxlens.hooks import act_name


POSITIONS = ("prompt", "last", "all")


def write_index(site: str, layer: int | None) -> int:
    """Position of a residual write in `write_targets`: embed, attn_out 0, mlp_out 0, attn_out 1, …"""
    return 0 if site == "embed" else 1 + 2 * layer + (site == "mlp_out")


@dataclass(frozen=True)
class Steering:
    """What to do to a model's residual stream, and when.

    What: ablate `direction` (unit, [d_model]) — at every residual write, or from the stream after block
    `ablate_from` on (there only, with `stream_only`) — and/or add `coefficient · direction` after block
    `add_layer`. `positions`: "prompt" steers the prompt's tokens and lets the reply's own tokens run unedited,
    attending to the steered prompt (mean-ablation targets are statistics of prompts, not of replies); "last" steers
    only each prompt's last token; "all" steers every position, replies included — what a weight edit does.
    write_targets: [1 + 2·n_layers] projection each residual write is set to (None: 0); stream_targets:
    [n_layers] projection the stream after each block is set to where the ablation starts (None: 0).

    When: every row (`gate` None), or per row by `gate` — its ablated rows get the ablation, which then starts at
    the gate's layer (`ablate_from` defaults to it), its added rows the addition."""

    direction: torch.Tensor
    ablate: bool = True
    write_targets: torch.Tensor | None = None
    stream_targets: torch.Tensor | None = None
    one_sided: bool = False
    positions: str = "prompt"
    ablate_from: int | None = None
    stream_only: bool = False
    add_layer: int | None = None
    coefficient: float = 0.0
    gate: HarmGate | None = None

    def __post_init__(self):
        if self.direction.ndim != 1:
            raise ValueError(f"direction must be [d_model], got shape {tuple(self.direction.shape)}")
        object.__setattr__(self, "direction", self.direction.float() / self.direction.float().norm())
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        for name in ("write_targets", "stream_targets"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.float())
        gate = self.gate
        if gate is not None:
            if gate.weight.shape[-1] != self.direction.shape[0]:
                raise ValueError(f"width mismatch: gate weight {tuple(gate.weight.shape)}, "
                                 f"direction {tuple(self.direction.shape)}")
            if self.ablate_from is None:
                object.__setattr__(self, "ablate_from", gate.layer)
            elif self.ablate and self.ablate_from < gate.layer:
                raise ValueError(f"ablate_from {self.ablate_from} comes before the gate's layer {gate.layer}, where "
                                 f"the gate decides which rows to ablate")
            if self.add_layer is not None and self.coefficient and self.add_layer < gate.layer:
                raise ValueError(f"add_layer {self.add_layer} comes before the gate's layer {gate.layer}, where "
                                 f"the gate decides which rows get the addition")
        if self.stream_only and self.ablate_from is None:
            raise ValueError("stream_only ablates the stream after block ablate_from alone; set ablate_from "
                             "(or a gate)")

    def write_target(self, site: str, layer: int | None) -> float:
        return 0.0 if self.write_targets is None else float(self.write_targets[write_index(site, layer)])

    def stream_target(self, layer: int) -> float:
        return 0.0 if self.stream_targets is None else float(self.stream_targets[layer])

    @property
    def d_model(self) -> int:
        return self.direction.shape[0]

    def decided(self, decision: str) -> "Steering | None":
        """What this steering does to a row its gate sent to `decision` ("ablate", "add" or "none"), as a steering
        with no gate: every row it is applied to gets it. Run each record under the decision its label calls for
        and the gate's errors drop out (an oracle gate), leaving what the intervention itself can do."""
        if decision not in ("ablate", "add", "none"):
            raise ValueError(f"decision must be 'ablate', 'add' or 'none', got {decision!r}")
        if decision == "none" or (decision == "ablate" and not self.ablate) or (
                decision == "add" and (self.add_layer is None or not self.coefficient)):
            return None
        if decision == "ablate":
            return replace(self, gate=None, add_layer=None, coefficient=0.0)
        return replace(self, gate=None, ablate=False, ablate_from=None, stream_only=False)

    @contextmanager
    def apply(self, model):
        handle = self.patch(model)
        try:
            yield handle
        finally:
            handle.remove()

    def patch(self, model) -> "SteeringHandle":
        """Attach the hooks to `model` (a LoadedModel, a bridge, or an HF causal LM); `.remove()` takes them off."""
        backend = _Backend(model)
        if backend.d_model != self.d_model:
            raise ValueError(f"width mismatch: the model has d_model {backend.d_model}, this steering {self.d_model}")
        if self.write_targets is not None and len(self.write_targets) != 1 + 2 * backend.n_layers:
            raise ValueError(f"write_targets has {len(self.write_targets)} entries; a {backend.n_layers}-layer model "
                             f"has {1 + 2 * backend.n_layers} residual writes")
        if getattr(backend.model, "_taxlens_steered", False):  # a notebook cell run twice would stack the edits
            raise ValueError("this model is already steered: a handle from an earlier patch() is still attached; "
                             "remove it first (handle.remove()), or steer inside `with steering.apply(model):`")
        handle = SteeringHandle(self, backend)
        try:
            handle.attach()
        except BaseException:  # no half-attached edit, nor a model marked steered, left behind
            handle.remove()
            raise
        return handle


# what a gate that knew each record's kind would decide: give benign requests and lookalikes the ablation, harmful
# ones the addition, and leave injections (whose right answer is the user's own task) alone
ORACLE_DECISIONS = {"benign": "ablate", "lookalike": "ablate", "harmful": "add", "injection": "none"}


def oracle_gate(steering: Steering) -> dict[str, Steering | None]:
    """Record kind → the gate-free steering an oracle gate would give it (`ORACLE_DECISIONS`), for
    `taxlens.evaluation.evaluate(..., steering=oracle_gate(s))`: the most a gated config's intervention can do
    with a perfect gate, so that what a gate loses and what its intervention loses can be told apart."""
    if steering.gate is None:
        raise ValueError("an oracle gate replaces a steering's gate, and this steering has none")
    return {kind: steering.decided(decision) for kind, decision in ORACLE_DECISIONS.items()}


class SteeringHandle:
    """The hooks of one `Steering` on one model, with the gate's per-row decisions (`decisions`: True = ablate)."""

    def __init__(self, steering: Steering, backend: "_Backend"):
        self.steering, self.backend = steering, backend
        self.decisions: torch.Tensor | None = None  # [batch] bool, the current prompt's rows to ablate
        self.additions: torch.Tensor | None = None  # [batch] bool, its rows that get the direction added
        self.harm_probability: torch.Tensor | None = None  # [batch]
        self._gate_reads: dict[int, torch.Tensor] = {}  # layer → [batch, d_model], the new prompt's last token
        self._prompt_signature: torch.Tensor | None = None  # [batch, prompt_len]: which tokens the prompt holds
        self._seen_len, self._new_prompt = 0, False
        self._span, self._n_pos = (0, 0), 0  # [start, stop) of the positions this forward steers, of _n_pos
        self._masks: dict = {}  # this forward's position weights per (device, dtype, rows)
        self._directions: dict = {}  # the direction per (device, dtype)
        self._removers = []

    def attach(self) -> None:
        """Hooks in the order each point must run them: the gate decides before its layer's stream is ablated,
        and the ablation comes before an addition at the same point."""
        s, n_layers = self.steering, self.backend.n_layers
        self._hook("embed", None, self._track)  # first: every later hook reads what it records
        if s.gate is not None:
            for layer in s.gate.read_layers[:-1]:
                self._hook("resid_post", layer, self._read(layer))
            self._hook("resid_post", s.gate.layer, self._gate)
        if s.ablate:
            if s.ablate_from is None:
                self._hook("embed", None, self._ablate_to(s.write_target("embed", None)))
            else:
                self._hook("resid_post", s.ablate_from, self._ablate_to(s.stream_target(s.ablate_from)))
            if not s.stream_only:
                for layer in range(0 if s.ablate_from is None else s.ablate_from + 1, n_layers):
                    for site in ("attn_out", "mlp_out"):
                        self._hook(site, layer, self._ablate_to(s.write_target(site, layer)))
        if s.add_layer is not None and s.coefficient:
            self._hook("resid_post", s.add_layer, self._add)

    def gate_readings(self) -> list[tuple[float, str]] | None:
        """Per row of the prompt batch last run, (p(harmful), the gate's decision: "ablate", "add" or "none");
        None when the steering has no gate or no prompt has been run."""
        if self.steering.gate is None or self.harm_probability is None:
            return None
        # unrounded: a reading rounded to 0.99 may lie just below an add threshold of 0.99
        return [(float(p), "ablate" if ablate else "add" if add else "none")
                for p, ablate, add in zip(self.harm_probability, self.decisions.tolist(), self.additions.tolist())]

    def _hook(self, site, layer, fn) -> None:
        self._removers.append(self.backend.register(site, layer, fn))
        self.backend.model._taxlens_steered = True

    def remove(self) -> None:
        for remove in self._removers:
            remove()
        if self._removers:
            self.backend.model._taxlens_steered = False
        self._removers = []

    def _track(self, embed: torch.Tensor) -> torch.Tensor:
        """Tell a new prompt from a continuation of the last one, and mark the positions to steer: all of a new
        prompt; the prompt's part of an uncached continuation (one more token, same prompt tokens); none of a
        KV-cached decode step."""
        known = self._prompt_signature
        n_prompt = 0 if known is None else known.shape[1]
        same_rows = known is not None and embed.shape[0] == known.shape[0]
        if same_rows and embed.shape[1] == 1:
            steered, self._new_prompt = 0, False
        else:
            signature = embed.detach().float().sum(-1)  # [batch, pos]: equal exactly when the tokens are equal
            if (same_rows and embed.shape[1] == self._seen_len + 1
                    and torch.equal(signature[:, :n_prompt], known.to(signature.device))):
                steered, self._new_prompt = n_prompt, False
            else:
                self._prompt_signature, steered, self._new_prompt = signature, embed.shape[1], True
        self._seen_len = embed.shape[1] if embed.shape[1] > 1 else self._seen_len + 1
        if self.steering.positions == "all":
            self._span = (0, embed.shape[1])
        else:
            self._span = (steered - 1 if self.steering.positions == "last" else 0, steered) if steered else (0, 0)
        self._n_pos, self._masks = embed.shape[1], {}
        return embed

    def _mask(self, act: torch.Tensor, rows: str | None) -> torch.Tensor | float | None:
        """[batch or 1, pos, 1] weights of the positions this forward steers (times the gate's `rows`, "ablate" or
        "add", when given), built once per forward for act's device and dtype; 1.0 when it is every position of
        every row, None when nothing is steered (a KV-cached decode step under "prompt" or "last")."""
        start, stop = self._span
        if start == stop:
            return None
        if rows is None and (start, stop) == (0, self._n_pos):
            return 1.0
        key = (act.device, act.dtype, rows)
        if key not in self._masks:
            mask = torch.zeros(1, self._n_pos, 1, device=act.device, dtype=act.dtype)
            mask[:, start:stop] = 1
            if rows is not None:
                chosen = self.decisions if rows == "ablate" else self.additions
                mask = mask * chosen.to(act.device, act.dtype)[:, None, None]
            self._masks[key] = mask
        return self._masks[key]

    def _direction(self, act: torch.Tensor) -> torch.Tensor:
        """The unit direction on act's device and dtype, cast once per handle rather than at every hook call."""
        key = (act.device, act.dtype)
        if key not in self._directions:
            self._directions[key] = self.steering.direction.to(act.device, act.dtype)
        return self._directions[key]

    def _ablate_to(self, target: float):
        def ablate(act: torch.Tensor) -> torch.Tensor:
            mask = self._mask(act, None if self.steering.gate is None else "ablate")
            if mask is None:
                return act
            r = self._direction(act)
            excess = act @ r - target if target else act @ r  # [batch, pos]
            if self.steering.one_sided:
                excess = excess.clamp(min=0)
            excess = excess.unsqueeze(-1) if isinstance(mask, float) else excess.unsqueeze(-1) * mask
            return torch.addcmul(act, excess, r, value=-1)
        return ablate

    def _add(self, act: torch.Tensor) -> torch.Tensor:
        mask = self._mask(act, None if self.steering.gate is None else "add")
        if mask is None:
            return act
        if isinstance(mask, float):
            return torch.add(act, self._direction(act), alpha=self.steering.coefficient)
        return torch.addcmul(act, mask, self._direction(act), value=self.steering.coefficient)

    def _read(self, layer: int):
        def read(act: torch.Tensor) -> torch.Tensor:
            if self._new_prompt:
                self._gate_reads[layer] = act[:, -1].detach()
            return act
        return read

    def _gate(self, act: torch.Tensor) -> torch.Tensor:
        """Decide on the unsteered stream at a new prompt's last token; the decisions hold for its continuation."""
        gate = self.steering.gate
        if self._new_prompt:
            reads = [self._gate_reads[layer].to(act.device) for layer in gate.read_layers[:-1]] + [act[:, -1]]
            self.harm_probability = gate.probability(torch.stack(reads, 1)).cpu()
            self.decisions, self.additions = gate.decide(self.harm_probability)
            self._masks = {}
        return act


def residual_writes(layer) -> tuple:
    """The modules whose outputs a decoder layer adds to the residual stream: (attention, MLP). Llama-style layers
    add the attention and MLP outputs themselves; layers with norms after them (Gemma 2/3, OLMo 2: a
    `post_feedforward_layernorm`) add the normed outputs, and ablating before those norms would not ablate."""
    if hasattr(layer, "post_feedforward_layernorm"):
        return layer.post_attention_layernorm, layer.post_feedforward_layernorm
    return layer.self_attn, layer.mlp


class _Backend:
    """Where the residual stream is written, on a TransformerLens bridge or a plain HF Llama-style model."""

    def __init__(self, model):
        model = getattr(model, "bridge", None) or getattr(model, "hf", model)  # a Loaded/ServingModel's model
        self.model = model
        self.is_bridge = hasattr(model, "hook_dict")
        if self.is_bridge:
            self.n_layers, self.d_model = model.cfg.n_layers, model.cfg.d_model
        else:
            if not hasattr(getattr(model, "model", None), "layers"):
                raise ValueError(f"steering a plain HF model needs a Llama-style decoder (`model.layers`); "
                                 f"{type(model).__name__} has none: load it through the bridge "
                                 f"(`load_model`, `taxlens serve --engine bridge`)")
            self.n_layers, self.d_model = model.config.num_hidden_layers, model.config.hidden_size

    def register(self, site: str, layer: int | None, fn):
        """Run fn(act) → act at `site` ("embed", "attn_out", "mlp_out", "resid_post") of `layer`; returns a remover."""
        if self.is_bridge:
            point = self.model.hook_dict[act_name(site, layer)]
            handle = point.add_hook(lambda act, hook: fn(act))

            def remove():
                handle.hook.remove()
                if handle in point.fwd_hooks:
                    point.fwd_hooks.remove(handle)
            return remove
        inner = self.model.model
        module = {"embed": lambda: inner.embed_tokens, "attn_out": lambda: residual_writes(inner.layers[layer])[0],
                  "mlp_out": lambda: residual_writes(inner.layers[layer])[1],
                  "resid_post": lambda: inner.layers[layer]}[site]()

        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                return (fn(output[0]), *output[1:])
            return fn(output)
        return module.register_forward_hook(hook).remove
