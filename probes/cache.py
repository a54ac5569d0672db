"""Caching residual-stream activations at chosen hooks and prompt positions, to disk, one batch at a time.

Positions are per prompt: negative integers count back from the prompt's last token (-1 is the token the first
reply token is predicted from), and `"user_end"` is the last token of the last user message. Only the chosen
positions are kept: the hook slices and clones inside the forward pass, so the full activation is freed at once.
The index also keeps each prompt's refusal score (`taxlens.scoring`) from the same forward pass: the behaviour
labels a refusal direction is fitted on.

>>> store = cache_activations(model, records, "runs/cache", positions=(-1, -2, "user_end"))   # doctest: +SKIP
>>> store.load("resid_pre.3", -1, store.select(kinds=("harmful",))).shape                     # doctest: +SKIP
torch.Size([156, 256])
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from taxlens.chat import render_prompt
from taxlens.contract import Record, check_selection
from taxlens.generation import length_batches
from taxlens.models import LoadedModel
from taxlens.hooks import hook_name, resid_hooks
from taxlens.scoring import model_refusal_score

Position = int | str


def user_end_char(prompt: str, record: Record) -> int:
    """Character index of the last character of the last user message inside the rendered prompt."""
    content = next(m["content"] for m in reversed(record.messages) if m["role"] == "user")
    start = prompt.rfind(content)
    if start < 0:
        raise ValueError(f"record {record.id}: the chat template does not render the user message verbatim")
    return start + len(content) - 1


def _token_index(offsets: list[tuple[int, int]], first: int, prompt: str, record: Record,
                 positions: tuple[Position, ...]) -> list[int]:
    """Token index (in the padded row) of each requested position; the prompt's tokens are `offsets[first:]`."""
    n = len(offsets) - first
    idx = []
    for pos in positions:
        if pos == "user_end":
            char = user_end_char(prompt, record)
            idx.append(next(first + i for i, (a, b) in enumerate(offsets[first:]) if a <= char < b))
        elif isinstance(pos, int) and -n <= pos < 0:
            idx.append(first + n + pos)
        elif isinstance(pos, int):
            raise ValueError(f"record {record.id}: position {pos} lies outside its {n}-token prompt "
                             f"(use -1 … -{n}, or 'user_end')")
        else:
            raise ValueError(f"unknown position {pos!r}; use a negative integer or 'user_end'")
    return idx


@dataclass(frozen=True)
class EncodedBatch:
    """A batch ready for the model: input_ids, attention_mask: [batch, seq]; index: [batch, position] the token
    of each requested position in the padded rows; last: [batch] each prompt's last token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    index: torch.Tensor
    last: torch.Tensor


def encode_for_cache(tokenizer, prompts: list[str], records: list[Record], positions: tuple[Position, ...],
                     padding_side: str = "left") -> EncodedBatch:
    """Tokenize a batch once (with character offsets, for `user_end`) and find every requested position in it."""
    enc = tokenizer(prompts, add_special_tokens=False, padding=True, padding_side=padding_side,
                    return_offsets_mapping=True, return_tensors="pt")
    mask = enc["attention_mask"]
    width = mask.shape[1]
    rows = []
    for row, (prompt, record) in enumerate(zip(prompts, records)):
        n = int(mask[row].sum())
        first = width - n if padding_side == "left" else 0
        offsets = [tuple(o) for o in enc["offset_mapping"][row, :first + n].tolist()]
        rows.append(_token_index(offsets, first, prompt, record, (*positions, -1)))
    index = torch.tensor(rows)  # [batch, position + 1]
    return EncodedBatch(enc["input_ids"], mask, index[:, :-1], index[:, -1])


def _forward(model: LoadedModel, batch: EncodedBatch, hooks: list[str], with_scores: bool):
    """Run one batch; returns resid: [batch, hook, position, d_model] and refusal_score: [batch] (or None), both
    still on the model's device, so nothing waits for the device here."""
    bridge = model.bridge
    unknown = [h for h in hooks if hook_name(h) not in bridge.hook_dict]
    if unknown:
        raise KeyError(f"unknown hook(s) {unknown}; e.g. resid_pre.0 … resid_post.{model.n_layers - 1}")
    # every host-to-device copy before the forward is queued: on a GPU a later one would wait for the forward
    rows = torch.arange(len(batch.index)).unsqueeze(1).to(model.device)
    index = batch.index.to(model.device)
    keep, column = (t.to(model.device) for t in torch.unique(batch.last, return_inverse=True))
    input_ids, mask = batch.input_ids.to(model.device), batch.attention_mask.to(model.device)
    store: dict[str, torch.Tensor] = {}

    def grab(act, hook, key):
        store[key] = act[rows, index].detach()  # [batch, position, d_model]

    fwd = [(hook_name(h), lambda act, hook, key=h: grab(act, hook, key)) for h in hooks]
    hf = model.hf  # the HF model the bridge wraps: its hook points fire inside it
    with bridge.hooks(fwd_hooks=fwd):
        # the model's own forward (final norm, unembedding, any logit soft-capping), its logits kept only at the
        # prompts' last tokens: no [batch, pos, vocab] tensor
        logits = hf(input_ids=input_ids, attention_mask=mask, logits_to_keep=keep).logits  # [batch, keep, vocab]
    resid = torch.stack([store[h] for h in hooks], dim=1)
    if not with_scores:
        return resid, None
    last_logits = logits[rows[:, 0], column]  # [batch, vocab]
    return resid, model_refusal_score(model, last_logits)


@torch.no_grad()
def collect(model: LoadedModel, prompts: list[str], records: list[Record], hooks: list[str],
            positions: tuple[Position, ...], padding_side: str = "left",
            with_scores: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """resid: [batch, hook, position, d_model] (fp32, CPU) for one batch of prompts; with `with_scores`, also each
    prompt's refusal score at its last token, refusal_score: [batch], from the same forward pass."""
    batch = encode_for_cache(model.tokenizer, prompts, records, positions, padding_side)
    resid, score = _forward(model, batch, hooks, with_scores)
    resid = resid.float().cpu()  # one device-to-host copy per batch
    return (resid, score.cpu()) if with_scores else resid


class ActivationStore:
    """A cache on disk: safetensors shards of `resid: [rows, hook, position, d_model]` plus `index.json`.

    Reads are lazy: `load` slices rows out of the memory-mapped shards, so only what is asked for is read.
    """

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        index_path = self.dir / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: no activation cache here (none was written, or caching stopped "
                                    f"before it finished)")
        self.index = json.loads(index_path.read_text())
        self.hooks: list[str] = self.index["hooks"]
        self.positions: list[Position] = self.index["positions"]
        self.records: list[dict] = self.index["records"]

    def __len__(self) -> int:
        return len(self.records)

    def select(self, *, kinds: tuple[str, ...] | None = None, split: str | None = None) -> list[int]:
        kinds = check_selection(split, kinds)
        return [i for i, r in enumerate(self.records)
                if (kinds is None or r["kind"] in kinds) and (split is None or r["split"] == split)]

    def refusal_scores(self, rows: list[int] | None = None) -> torch.Tensor:
        """[len(rows)] refusal score of the model's first reply token (positive: leans to declining)."""
        rows = range(len(self)) if rows is None else rows
        return torch.tensor([self.records[i]["refusal_score"] for i in rows])

    def load(self, hook: str, position: Position, rows: list[int] | None = None) -> torch.Tensor:
        """[len(rows), d_model] activations at one hook and position (all rows when `rows` is None)."""
        if hook not in self.hooks:
            raise KeyError(f"hook {hook!r} is not in this cache ({self.hooks})")
        if position not in self.positions:
            raise KeyError(f"position {position!r} is not in this cache ({self.positions})")
        h, p = self.hooks.index(hook), self.positions.index(position)
        rows = list(range(len(self))) if rows is None else list(rows)
        out = torch.empty((len(rows), self.index["d_model"]))
        for shard in self.index["shards"]:
            # a shard lists the records it holds; caches written before batching by length held a contiguous run
            held = shard["rows"] if "rows" in shard else range(shard["start"], shard["stop"])
            local = {r: j for j, r in enumerate(held)}
            inside = [(k, local[r]) for k, r in enumerate(rows) if r in local]
            if not inside:
                continue
            with safe_open(self.dir / shard["file"], framework="pt") as f:
                block = f.get_slice("resid")[:, h, p]  # [shard rows, d_model], only this hook and position
            for k, local in inside:
                out[k] = block[local]
        return out


def cache_activations(model: LoadedModel, records: list[Record], out_dir: str | Path, *,
                      hooks: list[str] | None = None, positions: tuple[Position, ...] = (-1,),
                      batch_size: int = 32, padding_side: str = "left", progress: bool = True) -> ActivationStore:
    """Run `records` through `model` and write the chosen activations to `out_dir`, one shard per batch."""
    if not records:
        raise ValueError("no records to cache")
    hooks = hooks or resid_hooks(model.n_layers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # an earlier cache's index would describe the shards this run overwrites: until this run's index is written, the
    # folder holds no cache, so one stopped half-way is never read as whole
    (out_dir / "index.json").unlink(missing_ok=True)
    for stale in out_dir.glob("shard-*.safetensors"):  # an earlier, larger cache's last shards are read by nothing
        stale.unlink()
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    # batches of alike length; each shard lists the records it holds, and the store reads rows in record order
    batches = length_batches(model.tokenizer, prompts, batch_size)

    def encode(rows: list[int]) -> EncodedBatch:
        return encode_for_cache(model.tokenizer, [prompts[i] for i in rows], [records[i] for i in rows], positions,
                                padding_side)

    shards, scores, pending = [], [0.0] * len(records), None
    # Three stages overlap: while the device runs batch k, the CPU tokenizes batch k + 1 and a thread writes
    # shard k - 1; at most one write waits, so memory stays bounded by two batches.
    with ThreadPoolExecutor(max_workers=1) as writer, torch.no_grad():
        following = encode(batches[0])
        for k, rows in enumerate(tqdm(batches, desc=f"cache {model.name}", disable=not progress)):
            resid, score = _forward(model, following, hooks, with_scores=True)  # queued on the device
            if k + 1 < len(batches):
                following = encode(batches[k + 1])
            resid, score = resid.float().cpu(), score.cpu()  # one device-to-host copy per batch
            name = f"shard-{len(shards):05d}.safetensors"
            if pending is not None:
                pending.result()
            pending = writer.submit(save_file, {"resid": resid.contiguous()}, out_dir / name)
            shards.append({"file": name, "rows": rows})
            for i, value in zip(rows, score.tolist()):
                scores[i] = value
        pending.result()
    index = {
        "model": model.name, "hooks": hooks, "positions": list(positions), "d_model": model.d_model,
        "dtype": "float32", "shards": shards,
        "records": [{"id": r.id, "kind": r.kind, "domain": r.domain, "split": r.split,
                     "refusal_score": round(s, 5)} for r, s in zip(records, scores)],
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return ActivationStore(out_dir)
