"""taxlens: find where defense training makes tool-using LLM agents over-refuse benign calls, and remove it without
removing the defense.

The path a notebook walks, from one import (dataset → model → activations → directions → steered model →
server):

>>> import taxlens
>>> model = taxlens.load_model("organism:defended")                                     # doctest: +SKIP
>>> train = taxlens.load_records("datasets/toolcalls.jsonl", split="train")               # doctest: +SKIP
>>> report = taxlens.evaluate(model, train, data="datasets/toolcalls.jsonl", split="train")  # doctest: +SKIP
>>> hooks = taxlens.resid_post_hooks(model.n_layers) + taxlens.write_hooks(model.n_layers)  # doctest: +SKIP
>>> fitted = taxlens.fit_vectors(taxlens.cache_activations(model, train, "runs/cache", hooks=hooks))  # doctest: +SKIP
>>> steer = taxlens.Steering(fitted.refusal[3], gate=fitted.stacked_gates[3])             # doctest: +SKIP
>>> with steer.apply(model): ...                                                          # doctest: +SKIP
>>> app = taxlens.create_app(taxlens.load_serving_model("organism:defended"), steering=steer)  # doctest: +SKIP
>>> tasks = taxlens.load_tasks("datasets/agent_tasks.jsonl", split="test")                 # doctest: +SKIP
>>> with steer.apply(model):                                                              # doctest: +SKIP
...     runs = taxlens.run_tasks(taxlens.ModelPolicy(model), tasks)  # each task in a fresh sandbox

Names that live in the analysis and steering packages (`probes`, `steering`) are imported on first use, so the core
modules never import them.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "taxlens.contract": ("Record", "load_records"),
    "taxlens.models": ("ModelSource", "load_model", "load_serving_model"),
    "taxlens.evaluation": ("evaluate",),
    "taxlens.eval_report": ("EvalReport",),
    "taxlens.metrics": ("autonomy_tax", "defense_retained", "tax_recovered"),
    "taxlens.endpoint": ("evaluate_endpoint",),
    "taxlens.hooks": ("act_name", "resid_post_hooks", "write_hooks"),
    "taxlens.readout": ("read_openings",),
    "taxlens.subset": ("sample_records",),
    "taxlens.agent": ("AgentReport", "EndpointPolicy", "ModelPolicy", "Sandbox", "agent_comparison", "load_tasks",
                      "run_tasks"),
    "probes.cache": ("ActivationStore", "cache_activations"),
    "probes.linear": ("LinearProbe",),
    "probes.pipeline": ("run_probe",),
    "probes.patching": ("cross_model_patching", "head_patching"),
    "probes.heads": ("head_reading",),
    "steering.fit": ("fit_vectors",),
    "steering.gate": ("HarmGate",),
    "steering.hooks": ("Steering",),
    "steering.config": ("load_config", "save_config"),
    "steering.pipeline": ("run_steer",),
    "steering.serve": ("create_app",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str):
    if name not in _HOME_OF:
        raise AttributeError(f"module 'taxlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
