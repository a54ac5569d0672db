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
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from taxlens.chat import render_prompt
from taxlens.contract import Record
from taxlens.models import LoadedModel
from taxlens.scoring import opening_token_ids, refusal_score

Position = int | str


def default_hooks(n_layers: int) -> list[str]:
    """Every layer's residual stream entering the block, plus the stream after the last block."""
    return [f"resid_pre.{i}" for i in range(n_layers)] + [f"resid_post.{n_layers - 1}"]


def hook_name(short: str) -> str:
    """`resid_pre.3` → `blocks.3.hook_resid_pre`; full TransformerLens names pass through unchanged."""
    kind, _, layer = short.partition(".")
    if kind in ("resid_pre", "resid_post", "attn_out", "mlp_out") and layer.isdigit():
        return f"blocks.{layer}.hook_{kind}"
    return short


def user_end_char(prompt: str, record: Record) -> int:
    """Character index of the last character of the last user message inside the rendered prompt."""
    content = next(m["content"] for m in reversed(record.messages) if m["role"] == "user")
    start = prompt.rfind(content)
    if start < 0:
        raise ValueError(f"record {record.id}: the chat template does not render the user message verbatim")
    return start + len(content) - 1


def token_positions(tokenizer, prompts: list[str], records: list[Record], positions: tuple[Position, ...]) -> list[list[int]]:
    """Per prompt, the token index (in the unpadded prompt) of each requested position."""
    out = []
    for prompt, record in zip(prompts, records):
        enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        n = len(enc["input_ids"])
        idx = []
        for pos in positions:
            if pos == "user_end":
                char = user_end_char(prompt, record)
                idx.append(next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= char < b))
            elif isinstance(pos, int) and -n <= pos < 0:
                idx.append(n + pos)
            elif isinstance(pos, int):
                raise ValueError(f"record {record.id}: position {pos} lies outside its {n}-token prompt "
                                 f"(use -1 … -{n}, or 'user_end')")
            else:
                raise ValueError(f"unknown position {pos!r}; use a negative integer or 'user_end'")
        out.append(idx)
    return out


@torch.no_grad()
def collect(model: LoadedModel, prompts: list[str], records: list[Record], hooks: list[str],
            positions: tuple[Position, ...], padding_side: str = "left",
            with_scores: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """resid: [batch, hook, position, d_model] (fp32, CPU) for one batch of prompts; with `with_scores`, also each
    prompt's refusal score at its last token, refusal_score: [batch], from the same forward pass."""
    bridge, tok = model.bridge, model.tokenizer
    unknown = [h for h in hooks if hook_name(h) not in bridge.hook_dict]
    if unknown:
        raise KeyError(f"unknown hook(s) {unknown}; e.g. resid_pre.0 … resid_post.{model.n_layers - 1}")
    index = torch.tensor(token_positions(tok, prompts, records, (*positions, -1)))  # [batch, position + 1]
    enc = tok(prompts, add_special_tokens=False, padding=True, padding_side=padding_side, return_tensors="pt")
    mask = enc["attention_mask"]
    if padding_side == "left":
        index = index + (mask.shape[1] - mask.sum(1, keepdim=True))
    index, last = index[:, :-1], index[:, -1]
    rows = torch.arange(len(prompts)).unsqueeze(1).to(model.device)
    index = index.to(model.device)
    store: dict[str, torch.Tensor] = {}

    def grab(act, hook, key):
        store[key] = act[rows, index].detach()  # [batch, position, d_model], still on the model's device

    fwd = [(hook_name(h), lambda act, hook, key=h: grab(act, hook, key)) for h in hooks]
    hf = model.hf  # the HF model the bridge wraps: its hook points fire inside it
    with bridge.hooks(fwd_hooks=fwd):
        # the decoder alone, then the unembedding at each prompt's last token only: no [batch, pos, vocab] logits
        hidden = hf.get_decoder()(input_ids=enc["input_ids"].to(model.device),
                                  attention_mask=mask.to(model.device)).last_hidden_state
    resid = torch.stack([store[h] for h in hooks], dim=1).float().cpu()  # one device-to-host copy per batch
    if not with_scores:
        return resid
    logits = hf.get_output_embeddings()(hidden[rows[:, 0], last.to(model.device)])  # [batch, vocab]
    last_logprobs = torch.log_softmax(logits.float(), dim=-1)
    return resid, refusal_score(last_logprobs, opening_token_ids(tok)).cpu()


class ActivationStore:
    """A cache on disk: safetensors shards of `resid: [rows, hook, position, d_model]` plus `index.json`.

    Reads are lazy: `load` slices rows out of the memory-mapped shards, so only what is asked for is read.
    """

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        index_path = self.dir / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: no activation cache here")
        self.index = json.loads(index_path.read_text())
        self.hooks: list[str] = self.index["hooks"]
        self.positions: list[Position] = self.index["positions"]
        self.records: list[dict] = self.index["records"]

    def __len__(self) -> int:
        return len(self.records)

    def select(self, *, kinds: tuple[str, ...] | None = None, split: str | None = None) -> list[int]:
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
            inside = [(k, r - shard["start"]) for k, r in enumerate(rows) if shard["start"] <= r < shard["stop"]]
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
    hooks = hooks or default_hooks(model.n_layers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    shards, scores, pending = [], [], None
    # a shard is written while the next batch runs; at most one write waits, so memory stays bounded by two batches
    with ThreadPoolExecutor(max_workers=1) as writer:
        for start in tqdm(range(0, len(records), batch_size), desc=f"cache {model.name}", disable=not progress):
            stop = min(start + batch_size, len(records))
            resid, score = collect(model, prompts[start:stop], records[start:stop], hooks, positions, padding_side,
                                   with_scores=True)
            name = f"shard-{len(shards):05d}.safetensors"
            if pending is not None:
                pending.result()
            pending = writer.submit(save_file, {"resid": resid.contiguous()}, out_dir / name)
            shards.append({"file": name, "start": start, "stop": stop})
            scores.extend(score.tolist())
        pending.result()
    index = {
        "model": model.name, "hooks": hooks, "positions": list(positions), "d_model": model.d_model,
        "dtype": "float32", "shards": shards,
        "records": [{"id": r.id, "kind": r.kind, "domain": r.domain, "split": r.split,
                     "refusal_score": round(s, 5)} for r, s in zip(records, scores)],
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return ActivationStore(out_dir)
