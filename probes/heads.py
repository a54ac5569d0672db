"""What one attention head reads and writes: from a prompt's last token (where the first reply token, call or
refusal, is decided), how much of its attention falls on the words a record names as its triggers, which token it
looks at most, and how far its output lies along a given direction. Head patching (`probes.patching.head_patching`)
says which head carries the over-refusal; this says what it reads and writes there, in the defended model and in
its base.

>>> reading = head_reading(defended, lookalike, prompts, layer=3, head=1, direction=refusal)   # doctest: +SKIP
>>> reading["trigger_attention"]["mean"], reading["most_attended"][:2], reading["writes"]     # doctest: +SKIP
(0.2079, [['<|bos|>', 15], ['job', 13]], {'projection': 9.1852, 'norm': 11.5837})
"""

from __future__ import annotations

import re
from collections import Counter

import torch

from taxlens.contract import Record
from taxlens.generation import encode_batch, length_batches
from taxlens.hooks import act_name
from taxlens.metrics import family_bootstrap
from taxlens.models import LoadedModel


def _word_mask(tokenizer, prompt: str, record: Record, words: list[str] | None) -> list[bool] | None:
    """Per token of `prompt` (no special tokens added), whether it overlaps the last user message (`words` None) or
    a word of it that begins with one of `words`; None when the tokenizer gives no offsets or the template rewrote
    the message, so its words cannot be placed."""
    if not getattr(tokenizer, "is_fast", False):
        return None
    user = next(m["content"] for m in reversed(record.messages) if m["role"] == "user")
    start = prompt.rfind(user)
    if start < 0:
        return None
    spans = ([(start, start + len(user))] if words is None else
             [(start + m.start(), start + m.end()) for word in words
              for m in re.finditer(rf"(?<!\w){re.escape(word)}\w*", user, flags=re.IGNORECASE)])
    offsets = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [any(a < end and begin < b for begin, end in spans) for a, b in offsets]


def trigger_token_mask(tokenizer, prompt: str, record: Record) -> list[bool] | None:
    """Per token of `prompt` (no special tokens added), whether it overlaps a word of `record`'s last user message
    that begins with one of its trigger words (triggers are often stems: `admin` in "administrator", `password` in
    "Passwords"); None when the record names no triggers or its words cannot be placed."""
    return _word_mask(tokenizer, prompt, record, record.triggers) if record.triggers else None


@torch.no_grad()
def head_reading(model: LoadedModel, records: list[Record], prompts: list[str], layer: int, head: int, *,
                 direction: torch.Tensor | None = None, batch_size: int = 16, top: int = 10,
                 examples: int = 4) -> dict:
    """From each prompt's last token, head `head` of block `layer`: the mean share of its attention on the record's
    trigger words (over records whose triggers can be placed, with a 95% interval resampling template families where
    records name theirs; `uniform`: the share attention spread evenly over the prompt would give) and the tokens it
    attends to most, counted over prompts. With `direction` ([d_model], e.g. the refusal direction after that
    block), also what the head writes there: its output (z through its slice of the output projection) projected
    on the unit direction, and that output's norm, averaged over prompts. `examples`: for that many records (their
    triggers placed, one a template family, in the order given), the head's attention on each token of the user's
    message (`tokens`, `attention`, `trigger`) and what it gives the rest of the prompt (`rest`), for a plot."""
    hook = act_name("pattern", layer)
    masses, shares, most = {}, [], Counter()  # masses: record id → attention; shares: trigger tokens' part
    placed: dict[int, tuple] = {}  # prompt index → (ids, attention, trigger mask) where its triggers were placed
    writes = []  # [rows, d_model] the head's output at the last token
    w_o = model.bridge.blocks[layer].attn.W_O[head].float()  # [d_head, d_model]
    for rows in length_batches(model.tokenizer, prompts, batch_size):
        batch = encode_batch(model.tokenizer, [prompts[i] for i in rows], model.device)
        seen = {}

        def grab(pattern, hook):  # pattern: [batch, head, query, key]; keep the last query's row of one head
            seen["last"] = pattern[:, head, -1].float().cpu()

        def grab_z(z, hook):  # z: [batch, pos, head, d_head]
            seen["z"] = z[:, -1, head].float()

        with model.bridge.hooks(fwd_hooks=[(hook, grab), (act_name("z", layer), grab_z)]):
            model.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        if "last" not in seen:
            raise ValueError(f"{model.name}: {hook} did not fire (this model's attention computes no pattern the "
                             f"bridge can read)")
        if direction is not None:
            writes.append((seen["z"] @ w_o.to(seen["z"].device)).cpu())
        for row, i in enumerate(rows):
            n = int(batch["attention_mask"][row].sum())
            weights = seen["last"][row, -n:]  # left padding: the prompt's own tokens are the last n
            ids = batch["input_ids"][row, -n:]
            most[model.tokenizer.decode([int(ids[int(weights.argmax())])]).strip().lower()] += 1
            mask = trigger_token_mask(model.tokenizer, prompts[i], records[i])
            if mask is not None and len(mask) == n and any(mask):
                masses[records[i].id] = float(weights[torch.tensor(mask)].sum())
                shares.append(sum(mask) / n)
                placed[i] = (ids, weights, mask)
    family_of = {r.id: r.extra.get("family") for r in records}
    spread = family_bootstrap(masses, family_of) if masses and all(family_of[i] for i in masses) else {}
    return {"layer": layer, "head": head, "model": model.name,
            "trigger_attention": {"mean": round(sum(masses.values()) / len(masses), 4) if masses else None,
                                  **{f"family_{end}": None if spread.get(end) is None else round(spread[end], 4)
                                     for end in ("lo", "hi")}, "n": len(masses),
                                  "uniform": round(sum(shares) / len(shares), 4) if shares else None},
            "most_attended": [[token, count] for token, count in most.most_common(top)],
            "writes": None if direction is None else _writes(torch.cat(writes), direction),
            "examples": [_example(model.tokenizer, prompts[i], records[i], *placed[i])
                         for i in _one_a_family(records, sorted(placed), examples)]}


def _example(tokenizer, prompt: str, record: Record, ids: torch.Tensor, weights: torch.Tensor,
             trigger: list[bool]) -> dict:
    """One prompt's last-token attention over its user message's tokens (ids, weights: [n] the prompt's own)."""
    user = _word_mask(tokenizer, prompt, record, None)
    keep = [j for j, inside in enumerate(user) if inside]
    return {"id": record.id, "family": record.extra.get("family"),
            "tokens": [tokenizer.decode([int(ids[j])]) for j in keep],
            "attention": [round(float(weights[j]), 4) for j in keep], "trigger": [trigger[j] for j in keep],
            "rest": round(1.0 - float(weights[keep].sum()), 4)}


def _one_a_family(records: list[Record], indices: list[int], n: int) -> list[int]:
    """The first `n` of `indices` whose records are of distinct template families (a record without one counts as
    its own)."""
    out, seen = [], set()
    for i in indices:
        family = records[i].extra.get("family") or records[i].id
        if family not in seen and len(out) < n:
            seen.add(family)
            out.append(i)
    return out


def _writes(out: torch.Tensor, direction: torch.Tensor) -> dict:
    """out: [prompts, d_model] a head's output → its mean projection on the unit `direction` and its mean norm."""
    unit = direction.float() / direction.float().norm()
    return {"projection": round(float((out @ unit).mean()), 4), "norm": round(float(out.norm(dim=-1).mean()), 4)}
