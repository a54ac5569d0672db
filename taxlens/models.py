"""Loading a model by name: an HF id, a local checkpoint folder, or the shipped `organism:base` / `organism:defended`,
optionally with a PEFT adapter on top, through `TransformerBridge.boot_transformers`, with device and dtype chosen
automatically. An adapter (given with `adapter=`, or as the model itself: a folder holding `adapter_config.json`) is
loaded by PEFT onto its base and merged, scaled by `adapter_scale` (0 gives the base, 1 the adapter as trained), so
the bridge and every hook see one plain HF model, as they would a full checkpoint. For serving only,
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

import hashlib
import json
import math
import warnings
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
    source: ModelSource
    openings: object = None  # taxlens.scoring.OpeningTokens read for this model; None: the default phrases'

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

    def fingerprint(self) -> str:
        """A short hash of a slice of every weight: two loads of the same weights agree, a model trained again at
        the same path (or an adapter at another scale) does not. Keys what is cached beside a run."""
        digest = hashlib.sha256()
        with torch.no_grad():
            for name, p in self.hf.named_parameters():
                digest.update(name.encode())
                digest.update(p.detach().flatten()[:64].float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]


def resolve(spec: str, strict: bool = True) -> str:
    """The path or HF id behind a model name; `organism:NAME` maps to the checkpoint shipped in the package. `strict`:
    a name that is a path must be a checkpoint or adapter folder (else `FileNotFoundError` says what it is)."""
    if spec.startswith("organism:"):
        name = spec.split(":", 1)[1]
        if name not in ORGANISM_NAMES:
            raise ValueError(f"unknown organism {spec!r}; choose organism:base or organism:defended")
        path = ORGANISM_DIR / name
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{spec}: no checkpoint at {path}. Train it with `taxlens organism train --out {ORGANISM_DIR}`."
            )
        return str(path)
    path = Path(spec).expanduser()
    if not strict:
        return str(path) if path.exists() else _cached_snapshot(spec) or spec
    if path.exists() or spec.startswith(("/", "./", "../", "~")):  # a folder, not a hub id
        if not path.is_dir():
            raise FileNotFoundError(f"{spec}: " + ("a file, not a model folder" if path.exists() else
                                                   "no such model folder"))
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{spec}: a folder with neither config.json (an HF checkpoint) nor "
                                    f"adapter_config.json (a PEFT adapter)")
        return str(path)
    return _cached_snapshot(spec) or spec


def _cached_snapshot(spec: str) -> str | None:
    """The folder of a hub id's snapshot in the local HF cache (nothing is downloaded), so that an adapter published
    on the hub (Meta-SecAlign-8B) is found as one and every file is read from one place; None when it is not cached."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(spec, local_files_only=True)
    except Exception:  # not cached here, or not a hub id
        return None


def pick_device(device: str | None = None) -> str:
    """`device` once torch can use it here, or, when None, cuda where available and else cpu. A device that is not
    one, or a GPU this machine does not have, is named in one line (torch's own errors come from deep in a load)."""
    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r}: not a device torch knows (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: torch sees no CUDA GPU on this machine (a CPU-only torch, or no "
                             f"driver); leave --device out to run on the CPU")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


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


@dataclass(frozen=True)
class ModelSource:
    """What to load: a model (HF id, folder or organism name) and optionally a PEFT adapter on it, at a scale.

    >>> ModelSource.of("organism:base").label
    'organism:base'
    """

    model: str
    adapter: str | None = None
    adapter_scale: float = 1.0

    @classmethod
    def of(cls, model: str, adapter: str | None = None, adapter_scale: float = 1.0) -> "ModelSource":
        """`model` may itself be an adapter folder (or `organism:defended`, the shipped adapter): its
        `adapter_config.json` names the base."""
        if adapter is None and (Path(resolve(model)) / "adapter_config.json").is_file():
            model, adapter = adapter_base(resolve(model)), model
        if adapter is not None and not (Path(resolve(adapter, strict=False)) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"adapter {adapter!r}: no adapter_config.json there (a PEFT adapter folder holds "
                                    f"adapter_config.json and adapter_model.safetensors)")
        if adapter is None and adapter_scale != 1.0:
            raise ValueError(f"adapter_scale {adapter_scale} given without an adapter")
        if not math.isfinite(adapter_scale):
            raise ValueError(f"adapter_scale {adapter_scale}: not a number a scale can be (0 = the base, 1 = the "
                             f"adapter as trained)")
        return cls(model, adapter, float(adapter_scale))

    @property
    def label(self) -> str:
        """How reports and configs name it: `MODEL`, `MODEL + ADAPTER`, or `MODEL + ADAPTER x SCALE`."""
        if self.adapter is None:
            return self.model
        if self.adapter.startswith("organism:") and self.adapter_scale == 1.0:
            return self.adapter  # organism:defended is the base with the shipped adapter
        return f"{self.model} + {self.adapter}" + ("" if self.adapter_scale == 1.0 else f" x {self.adapter_scale:g}")

    def same_as(self, other: "ModelSource") -> bool:
        """Same weights by name: the same resolved checkpoint, adapter folder and scale."""
        def key(s: ModelSource):
            return (_canonical(s.model), _canonical(s.adapter) if s.adapter else None, s.adapter_scale)
        return key(self) == key(other)

    def digest(self) -> str | None:
        """A short hash of the weight files behind this source (model, then adapter, and the scale), read from disk:
        the same whatever dtype or device they load in, so a steering config can tell a model trained again at the
        same path (or the same files under another name) apart. Files up to 64 MiB are hashed whole, larger ones by
        their size and 64 spread samples. None where the files are not on this machine."""
        digest = hashlib.sha256(repr(self.adapter_scale).encode())
        for role, spec in (("model", self.model), ("adapter", self.adapter)):
            if spec is None:
                continue
            files = _weight_files(spec)
            if not files:
                return None
            for path in files:
                size = path.stat().st_size
                digest.update(f"{role}/{path.name}:{size}".encode())
                with path.open("rb") as f:
                    if size <= WHOLE_FILE:
                        digest.update(f.read())
                        continue
                    for i in range(DIGEST_SAMPLES):
                        f.seek(i * (size - SAMPLE_BYTES) // (DIGEST_SAMPLES - 1))
                        digest.update(f.read(SAMPLE_BYTES))
        return digest.hexdigest()[:16]


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
WHOLE_FILE, DIGEST_SAMPLES, SAMPLE_BYTES = 64 << 20, 64, 16 << 10


def _weight_files(spec: str) -> list[Path]:
    """The weight files of a local folder or a cached hub snapshot (none for a model not on this machine)."""
    folder = Path(resolve(spec, strict=False))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def _canonical(spec: str) -> str:
    path = resolve(spec, strict=False)  # a config may name a folder on the machine it was made on
    return str(Path(path).resolve()) if Path(path).exists() else path


def adapter_base(folder: str | Path) -> str:
    """The base model an adapter folder was trained on (`base_model_name_or_path`), checked to be loadable here."""
    config_path = Path(folder) / "adapter_config.json"
    try:
        base = json.loads(config_path.read_text()).get("base_model_name_or_path")
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path}: not valid JSON ({e})") from None
    if not base:
        raise ValueError(f"{config_path}: names no base_model_name_or_path; load it as --model BASE --adapter {folder}")
    if base.startswith("."):  # a base named relative to the adapter folder (the organism's pair moves together)
        path = (Path(folder) / base).resolve()
        return "organism:base" if path == (ORGANISM_DIR / "base").resolve() else str(path)
    if not base.startswith("organism:") and not Path(base).is_dir() and Path(base).is_absolute():
        raise FileNotFoundError(f"{folder} is a PEFT adapter for {base!r}, which is not on this machine; "
                                f"load it as --model BASE_FOLDER --adapter {folder}")
    return base


def load_hf_model(source: ModelSource, device: str, dtype: torch.dtype):
    """The HF causal LM behind `source`, an adapter merged in fp32 (so a scale of 0 is the base exactly), moved to
    `device` and `dtype`; and the folder (or id) to read its tokenizer from: the adapter's when it holds one."""
    from transformers import AutoModelForCausalLM

    path = resolve(source.model)
    if not Path(path).is_dir():  # nothing is downloaded here; asking the hub would retry for a minute first
        from huggingface_hub.constants import HF_HUB_CACHE

        raise FileNotFoundError(f"{source.model}: not a local folder, nor a Hugging Face id in the local cache "
                                f"({HF_HUB_CACHE}); give the checkpoint's folder, or point HF_HOME at a cache that "
                                f"holds it")
    try:
        hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32 if source.adapter else dtype,
                                                  local_files_only=True)
    except OSError as e:  # a folder (or cached snapshot) without the weights
        raise FileNotFoundError(f"{source.model}: transformers cannot load it from {path} "
                                f"({str(e).splitlines()[0]})") from None
    tokenizer_dir = path
    if source.adapter:
        hf = _merge_adapter(hf, source)
        if (Path(resolve(source.adapter)) / "tokenizer_config.json").is_file():
            tokenizer_dir = resolve(source.adapter)
    hf = hf.to(device=device, dtype=dtype).eval()
    for p in hf.parameters():
        p.requires_grad_(False)
    return hf, tokenizer_dir


def _merge_adapter(hf, source: ModelSource):
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from peft.utils import AuxiliaryTrainingWrapper, ModulesToSaveWrapper

    folder = resolve(source.adapter)
    rows = _adapter_vocab_rows(Path(folder), hf)
    if rows and rows != hf.get_input_embeddings().weight.shape[0]:
        hf.resize_token_embeddings(rows)  # trained on the base with tokens added; the adapter holds their rows
    with warnings.catch_warnings():  # PEFT asks transformers ≥ 5 a deprecated question on every load: not the user's
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(hf, folder)
    if source.adapter_scale != 1.0:
        modules = list(peft_model.modules())
        lora = [m for m in modules if isinstance(m, LoraLayer)]
        saved = [m for m in modules if isinstance(m, ModulesToSaveWrapper)]
        other = {type(m).__name__ for m in modules if isinstance(m, AuxiliaryTrainingWrapper) and m not in saved}
        if other or not (lora or saved):
            raise ValueError(f"{source.adapter}: adapter_scale applies to LoRA layers and fully trained modules "
                             f"(modules_to_save); this adapter holds {', '.join(sorted(other)) or 'neither'}")
        for layer in lora:
            layer.scale_layer(source.adapter_scale)
        for wrapper in saved:  # a module trained in full moves by the same share of its update as a LoRA layer
            for trained in wrapper.modules_to_save.values():
                for original, weight in zip(wrapper.original_module.parameters(), trained.parameters()):
                    weight.data = original.data + source.adapter_scale * (weight.data - original.data)
    return peft_model.merge_and_unload()


def _adapter_vocab_rows(folder: Path, hf) -> int | None:
    """How many token rows the adapter's saved embedding or unembedding holds (PEFT saves them when training resized
    the vocabulary), or None when it saves neither."""
    from safetensors import safe_open

    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    ends = {hf.get_input_embeddings(), hf.get_output_embeddings()}
    names = {name.split(".")[-1] for name, m in hf.named_modules() if m in ends}
    with safe_open(str(weights), "pt") as f:
        rows = [f.get_slice(k).get_shape()[0] for k in f.keys()
                if any(f".{n}." in k for n in names) and k.endswith(".weight") and "lora_" not in k]
    return max(rows, default=None)


def load_model(spec: str | ModelSource, *, device: str | None = None, dtype: str | torch.dtype | None = None,
               adapter: str | None = None, adapter_scale: float = 1.0) -> LoadedModel:
    """Boot `spec` (with `adapter` merged at `adapter_scale`) through the bridge in eval mode; parameters are frozen
    (no autograd state is ever needed)."""
    from transformer_lens.model_bridge import TransformerBridge

    source = spec if isinstance(spec, ModelSource) else ModelSource.of(spec, adapter, adapter_scale)
    device = pick_device(device)
    dtype = pick_dtype(dtype, device)
    hf, tokenizer_dir = load_hf_model(source, device, dtype)
    tokenizer = None
    if tokenizer_dir != resolve(source.model):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    bridge = TransformerBridge.boot_transformers(resolve(source.model), hf_model=hf, tokenizer=tokenizer,
                                                 device=device, dtype=dtype)
    bridge.eval()
    for p in bridge.parameters():
        p.requires_grad_(False)
    tokenizer = bridge.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(source.label, bridge, tokenizer, source)


@dataclass
class ServingModel:
    """An HF causal LM loaded by plain `transformers`, for generation: what `taxlens serve` runs by default.
    Steering reaches it through PyTorch forward hooks; analysis (probes, patching) needs `load_model`'s bridge."""

    name: str
    hf: object
    tokenizer: object
    source: ModelSource
    openings: object = None  # as LoadedModel's

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


def load_serving_model(spec: str | ModelSource, *, device: str | None = None,
                       dtype: str | torch.dtype | None = None, adapter: str | None = None,
                       adapter_scale: float = 1.0) -> ServingModel:
    """`spec` loaded by plain `transformers` (same resolution, adapter merge, device and dtype as `load_model`)."""
    from transformers import AutoTokenizer

    source = spec if isinstance(spec, ModelSource) else ModelSource.of(spec, adapter, adapter_scale)
    device = pick_device(device)
    hf, tokenizer_dir = load_hf_model(source, device, pick_dtype(dtype, device))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return ServingModel(source.label, hf, tokenizer, source)
