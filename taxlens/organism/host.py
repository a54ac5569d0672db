"""What trained a checkpoint, for its card. Compiled training gives one pair per seed on one host and torch; another
host sold under the same CPU name gave another pair (docs/results.md, "More sentence shapes from the first step"), so
a card names the CPU down to its family and model, the kernels torch picked, and the threads.

>>> sorted(host())
['cpu', 'cpu_capability', 'threads', 'torch']
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def host() -> dict[str, str | int]:
    """torch's version, the CPU, the instruction set torch's CPU kernels dispatch to, and the threads they use."""
    return {"torch": torch.__version__, "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first CPU's name with its family, model and stepping where Linux lists them (a cloud CPU's name alone,
    "AMD EPYC", covers generations with different kernels); elsewhere what `platform` knows."""
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if not line.strip():
                break  # the first processor's block is enough: the cores of one host are alike
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    return (f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, "
            f"stepping {fields.get('stepping', '?')})")
