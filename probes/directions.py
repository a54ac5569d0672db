"""Directions in activation space: a small value object, and three ways to find one from two sets of activations.

>>> harm = Direction.fit(harmful_acts, lookalike_acts, method="mean_diff", hook="resid_pre.2", position=-1,
...                      model="organism:defended", data={"positive": "harmful", "negative": "lookalike"})  # doctest: +SKIP
>>> harm.save("runs/probe/harm_direction")                                                              # doctest: +SKIP
>>> (acts @ harm.vector).shape                                                                          # doctest: +SKIP
torch.Size([n])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

METHODS = ("mean_diff", "logistic", "pca")


def _check_sets(positive: torch.Tensor, negative: torch.Tensor) -> None:
    for name, x in (("positive", positive), ("negative", negative)):
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} activations must be a non-empty [n, d_model] matrix, got shape {tuple(x.shape)}")
    if positive.shape[1] != negative.shape[1]:
        raise ValueError(f"width mismatch: positive has d_model {positive.shape[1]}, negative {negative.shape[1]}")


def mean_diff(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Unit vector along mean(positive) − mean(negative). positive: [n, d], negative: [m, d] → [d]."""
    _check_sets(positive, negative)
    v = positive.double().mean(0) - negative.double().mean(0)
    return (v / v.norm()).float()


def logistic(positive: torch.Tensor, negative: torch.Tensor, C: float = 1.0) -> torch.Tensor:
    """Unit normal of a logistic-regression boundary fitted on the raw activations, pointing to `positive`."""
    from probes.linear import LinearProbe

    _check_sets(positive, negative)
    x = torch.cat([positive, negative]).double().numpy()
    y = [1] * len(positive) + [0] * len(negative)
    return torch.tensor(LinearProbe(C=C, standardize=False).fit(x, y).direction()).float()


def pca(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """First principal component of both sets pooled, signed to point from `negative` to `positive`."""
    _check_sets(positive, negative)
    x = torch.cat([positive, negative]).double()
    _, _, v = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    pc = v[0]
    if (positive.double().mean(0) - negative.double().mean(0)) @ pc < 0:
        pc = -pc
    return pc.float()


_FIT = {"mean_diff": mean_diff, "logistic": logistic, "pca": pca}


@dataclass(frozen=True)
class Direction:
    """A unit vector at one hook and position of one model, with what it was fitted on.

    vector: [d_model]. Saved as `<stem>.safetensors` (the vector) beside `<stem>.json` (everything else).
    """

    vector: torch.Tensor
    hook: str
    position: int | str
    method: str
    model: str
    data: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, positive: torch.Tensor, negative: torch.Tensor, *, method: str = "mean_diff", hook: str,
            position: int | str, model: str, data: dict | None = None) -> "Direction":
        if method not in _FIT:
            raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
        data = {**(data or {}), "n_positive": len(positive), "n_negative": len(negative)}
        return cls(_FIT[method](positive, negative), hook, position, method, model, data)

    @property
    def d_model(self) -> int:
        return self.vector.shape[0]

    def project(self, acts: torch.Tensor) -> torch.Tensor:
        """acts: [..., d_model] → [...] scalar projection on the direction."""
        if acts.shape[-1] != self.d_model:
            raise ValueError(f"width mismatch: activations have d_model {acts.shape[-1]}, direction {self.d_model}")
        return acts.float() @ self.vector

    def cosine(self, other: "Direction") -> float:
        if other.d_model != self.d_model:
            raise ValueError(f"width mismatch: {self.d_model} vs {other.d_model}")
        return float(self.vector @ other.vector / (self.vector.norm() * other.vector.norm()))

    def save(self, stem: str | Path) -> Path:
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        save_file({"vector": self.vector.contiguous()}, stem.with_suffix(".safetensors"))
        meta = {"hook": self.hook, "position": self.position, "method": self.method, "model": self.model,
                "d_model": self.d_model, "data": self.data}
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        return stem.with_suffix(".safetensors")

    @classmethod
    def load(cls, stem: str | Path) -> "Direction":
        stem = Path(stem)
        tensors, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        for p in (tensors, meta_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing (a direction is <stem>.safetensors plus <stem>.json)")
        meta = json.loads(meta_path.read_text())
        vector = load_file(tensors)["vector"]
        if vector.shape != (meta["d_model"],):
            raise ValueError(f"{tensors}: vector has shape {tuple(vector.shape)}, metadata says d_model {meta['d_model']}")
        return cls(vector, meta["hook"], meta["position"], meta["method"], meta["model"], meta["data"])
