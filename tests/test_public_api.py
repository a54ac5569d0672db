"""`import taxlens` gives the whole path, and importing it loads neither the analysis nor the steering package."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import taxlens


def test_every_public_name_resolves_to_its_home():
    for module in pkgutil.iter_modules(taxlens.__path__):  # a submodule named like an export would shadow it
        importlib.import_module(f"taxlens.{module.name}")
    for name in taxlens.__all__:
        value = getattr(taxlens, name)
        assert value.__name__ == name, name
    assert {"load_model", "load_records", "evaluate", "cache_activations", "fit_vectors", "Steering",
            "create_app"} <= set(taxlens.__all__)


def test_importing_the_core_loads_no_analysis_or_steering_module():
    code = ("import sys, taxlens, taxlens.models, taxlens.evaluation, taxlens.chat, taxlens.metrics; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('probes', 'steering')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
