"""The steering config on disk: `steer.json` (method, model, settings, search results) beside `vectors.safetensors`
(the direction and the gate's probe weight). The one file `eval`, `serve` and `export` accept.

>>> save_config(steering, "runs/steer", method="gated", model=loaded_model.source, settings={...})  # doctest: +SKIP
>>> steering, config = load_config("runs/steer/steer.json", model=loaded_model)                    # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from steering.gate import HarmGate
from steering.hooks import Steering
from taxlens.models import ORGANISM_DIR, ModelSource

METHODS = ("global", "false_refusal", "gated")
VECTORS = "vectors.safetensors"
SHIPPED = ORGANISM_DIR / "steer"  # organism:<method> → the searched config shipped for organism:defended


def config_path(spec: str | Path) -> Path:
    """The steer.json behind a path, a folder, or `organism:global|false_refusal|gated` (shipped configs)."""
    spec = str(spec)
    if spec.startswith("organism:"):
        method = spec.split(":", 1)[1]
        if method not in METHODS:
            raise ValueError(f"unknown shipped steering config {spec!r}; choose organism:{'|organism:'.join(METHODS)}")
        return SHIPPED / method / "steer.json"
    path = Path(spec)
    return path / "steer.json" if path.is_dir() else path


FORMAT = 2  # 1 (no "format" field): the gate carried the addition (`above_coefficient`) and `gate_only`


def save_config(steering: Steering, out_dir: str | Path, *, method: str, model: str | ModelSource, settings: dict,
                extra: dict | None = None) -> Path:
    if method not in METHODS:
        raise ValueError(f"unknown steering method {method!r}; choose one of {METHODS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {"direction": steering.direction.contiguous()}
    for name in ("write_targets", "stream_targets"):
        if getattr(steering, name) is not None:
            tensors[name] = getattr(steering, name).contiguous()
    model = model if isinstance(model, ModelSource) else ModelSource.of(model)
    adapter = {} if model.adapter is None else {"adapter": model.adapter, "adapter_scale": model.adapter_scale}
    digest = model.digest()
    adapter |= {} if digest is None else {"weights_digest": digest}
    config = {"format": FORMAT, "method": method, "model": model.model, **adapter, "d_model": steering.d_model,
              "vectors": VECTORS, "ablate": steering.ablate, "one_sided": steering.one_sided,
              "positions": steering.positions, "ablate_from": steering.ablate_from,
              "stream_only": steering.stream_only, "add_layer": steering.add_layer,
              "coefficient": steering.coefficient, "gate": None, "settings": settings, **(extra or {})}
    if steering.gate is not None:
        g = steering.gate
        tensors["gate_weight"] = g.weight.float().contiguous()
        config["gate"] = {"layer": g.layer, "bias": g.bias, "threshold": g.threshold,
                          "add_threshold": g.add_threshold, "read_layers": list(g.read_layers)}
    save_file(tensors, out_dir / VECTORS)
    path = out_dir / "steer.json"
    path.write_text(json.dumps(config, indent=1) + "\n")
    return path


def upgrade(config: dict, path: Path | str = "steer.json") -> dict:
    """A config of format 1 in today's shape: its gate's `above_coefficient` becomes the addition at the gate's
    layer, `gate_only` becomes `stream_only`, and a gated ablation starts at the gate's layer (as it did)."""
    if config.get("format", 1) == FORMAT:
        return config
    if config.get("format", 1) != 1:
        raise ValueError(f"{path}: format {config['format']!r} is newer than this taxlens reads ({FORMAT})")
    gate = config.get("gate")
    # gate_only meant nothing without a gate
    out = {k: v for k, v in config.items() if k != "gate_only"} | {
        "format": FORMAT, "stream_only": bool(config.get("gate_only")) and gate is not None}
    out["ablate_from"] = None if gate is None else gate["layer"]
    if gate is not None:
        above = float(gate.get("above_coefficient", 0.0))
        if above and config.get("add_layer") is not None and config.get("coefficient"):
            raise ValueError(f"{path}: a format-1 config that adds the direction both ungated (add_layer) and above "
                             f"its gate (above_coefficient) has no equivalent today")
        if above:
            out["add_layer"], out["coefficient"] = gate["layer"], above
        out["gate"] = {k: v for k, v in gate.items() if k != "above_coefficient"}
    return out


def load_config(path: str | Path, model=None) -> tuple[Steering, dict]:
    """Read a steering config (the `steer.json` file, its folder, or `organism:<method>`), format 1 converted
    (`upgrade`). With `model` (a LoadedModel), check that the config was made for it and has its width."""
    path = config_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no steering config here (expected steer.json from `taxlens steer`)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    for key in ("method", "model", "d_model", "vectors", "ablate", "gate"):
        if key not in config:
            raise ValueError(f"{path}: missing field {key!r}")
    config = upgrade(config, path)
    for key in ("ablate", "one_sided", "stream_only"):  # "false" in quotes would read as true
        if key in config and not isinstance(config[key], bool):
            raise ValueError(f"{path}: field {key!r} must be true or false, got {config[key]!r}")
    vectors_path = path.parent / config["vectors"]
    if not vectors_path.is_file():
        raise FileNotFoundError(f"{path}: its vector file {vectors_path} is missing")
    tensors = load_file(vectors_path)
    direction = tensors.get("direction")
    if direction is None or direction.shape != (config["d_model"],):
        raise ValueError(f"{vectors_path}: 'direction' must have shape ({config['d_model']},) as {path.name} says; "
                         f"found {None if direction is None else tuple(direction.shape)}")
    gate = None
    if config["gate"] is not None:
        g = config["gate"]
        add_threshold, read_layers = g.get("add_threshold"), g.get("read_layers")
        if "gate_weight" not in tensors:
            raise ValueError(f"{vectors_path}: no 'gate_weight', which the gate in {path.name} needs")
        try:
            gate = HarmGate(tensors["gate_weight"], float(g["bias"]), int(g["layer"]), float(g["threshold"]),
                            None if add_threshold is None else float(add_threshold),
                            None if read_layers is None else tuple(read_layers))
        except ValueError as e:
            raise ValueError(f"{path}: gate: {e}") from e
    try:
        steering = Steering(direction, ablate=bool(config["ablate"]), write_targets=tensors.get("write_targets"),
                            stream_targets=tensors.get("stream_targets"), one_sided=bool(config.get("one_sided")),
                            positions=config.get("positions", "prompt"), ablate_from=config.get("ablate_from"),
                            stream_only=bool(config.get("stream_only")), add_layer=config.get("add_layer"),
                            coefficient=float(config.get("coefficient", 0.0)), gate=gate)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    if model is not None:
        check_model(config, model, path)
    return steering, config


def config_source(config: dict) -> ModelSource:
    """The model (and adapter, at its scale) a config was fitted on."""
    return ModelSource(config["model"], config.get("adapter"), float(config.get("adapter_scale", 1.0)))


def check_source(config: dict, source: ModelSource, path: Path | str = "steer.json") -> None:
    """That a config was fitted on `source`'s weights: the same files (by digest, where both sides' are here) pass
    under any name; otherwise the names must agree (checkpoint, adapter, scale), and a model trained again under
    the same name is refused by its digest."""
    recorded, here = config.get("weights_digest"), source.digest()
    if recorded is not None and recorded == here:
        return
    made_for = config_source(config)
    if not made_for.same_as(source):
        raise ValueError(f"{path}: made for model {made_for.label!r}, not {source.label!r}; "
                         f"fit a config for this model with `taxlens steer`")
    if recorded is not None and here is not None:
        raise ValueError(f"{path}: fitted on other weights than {source.label!r} has now (weight files' digest "
                         f"{recorded}, here {here}: trained or converted again since?); fit a config for this "
                         f"model with `taxlens steer`")


def check_model(config: dict, model, path: Path | str = "steer.json") -> None:
    if model.d_model != config["d_model"]:
        raise ValueError(f"{path}: made for d_model {config['d_model']}, but {model.name} has d_model {model.d_model}")
    check_source(config, model.source, path)
    layers = {"gate layer": (config["gate"] or {}).get("layer"), "ablate_from": config.get("ablate_from"),
              "add_layer": config.get("add_layer")}
    for name, layer in layers.items():
        if layer is not None and not 0 <= layer < model.n_layers:
            raise ValueError(f"{path}: {name} {layer} outside {model.name}'s {model.n_layers} layers")
