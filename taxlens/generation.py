"""Batched greedy generation from rendered prompts, keeping each prompt's first-token log-probabilities.

Prompts are tokenised without extra special tokens (the chat template already holds them), sorted by length so
batches waste little padding, left-padded with an attention mask, and run through HF `generate` on the bridge's
`original_model`, so TransformerLens hooks (steering) fire at every step.

>>> replies = greedy_generate(model, ["<|user|>\\nhi\\n<|assistant|>\\n"], max_new_tokens=8)   # doctest: +SKIP
>>> replies[0].text, replies[0].first_logprobs.shape                                          # doctest: +SKIP
('Hello!', torch.Size([vocab]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from taxlens.models import LoadedModel, ServingModel


@dataclass(frozen=True)
class Reply:
    text: str
    tokens: list[int]
    first_logprobs: torch.Tensor  # [vocab], log-softmax of the logits at the first reply position (fp32, CPU)


def encode_batch(tokenizer, prompts: list[str], device) -> dict:
    """Left-padded ids and attention mask for `prompts`, no special tokens added."""
    enc = tokenizer(prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
    return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}


def length_batches(tokenizer, prompts: list[str], batch_size: int) -> list[list[int]]:
    """Indices of `prompts` in batches of alike token length, shortest first (ties in prompt order): a batch of
    prompts in their own order pads to its longest, which on the organism's splits is about 40% padding."""
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def stop_token_ids(tokenizer, model) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def greedy_generate(
    model: LoadedModel | ServingModel,
    prompts: list[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    use_cache: bool = True,
    progress: bool = False,
    desc: str = "generating",
    on_batch: Callable[[list[int]], None] | None = None,
) -> list[Reply]:
    """Greedy replies to `prompts`, in their order. `on_batch(indices)` is called after each batch is generated,
    with the indices of `prompts` it held, in batch-row order: the moment to read per-batch state of hooks, such
    as a steering gate's decisions."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    tok, hf = model.tokenizer, model.hf
    eos = stop_token_ids(tok, hf)
    replies: list[Reply | None] = [None] * len(prompts)
    bar = tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt")
    for idx in length_batches(tok, prompts, batch_size):
        batch = encode_batch(tok, [prompts[i] for i in idx], model.device)
        out = hf.generate(
            **batch, do_sample=False, max_new_tokens=max_new_tokens, use_cache=use_cache,
            eos_token_id=eos, pad_token_id=tok.pad_token_id, output_logits=True, return_dict_in_generate=True,
            temperature=None, top_p=None, top_k=None,
        )
        new = out.sequences[:, batch["input_ids"].shape[1]:].cpu()
        first = torch.log_softmax(out.logits[0].float(), dim=-1).cpu()
        for row, i in enumerate(idx):
            ids = new[row].tolist()
            cut = next((j for j, t in enumerate(ids) if t in eos), len(ids))
            ids = ids[:cut]
            replies[i] = Reply(tok.decode(ids, skip_special_tokens=True), ids, first[row])
        if on_batch is not None:
            on_batch(idx)
        bar.update(len(idx))
    bar.close()
    return replies


def check_passed_to(model, steering, passed_to) -> None:
    """What handing the prompts a gate passes to `passed_to` (the defended model's base) needs: a gated `steering`,
    and `model`'s vocabulary, since the prompt is rendered and scored with `model`'s tokenizer."""
    if passed_to is None:
        return
    if getattr(steering, "gate", None) is None:
        raise ValueError("passed_to answers what a gated steering's gate passes: give a gated steering too")
    if len(passed_to.tokenizer) != len(model.tokenizer):
        raise ValueError(f"passed_to {passed_to.name} has another vocabulary than {model.name}: it answers prompts "
                         f"rendered and scored with {model.name}'s tokenizer")


def gate_readings(model, steering, prompts: list[str], batch_size: int = 16) -> list[tuple[float, str] | None]:
    """A gated `steering`'s (p(harmful), decision) on each prompt, in order, from a one-token pass under it: how a
    prompt is routed before anything is generated for it."""
    read: list[tuple[float, str] | None] = [None] * len(prompts)
    if not prompts:
        return read
    with steering.apply(model) as handle:

        def on_batch(idx: list[int]) -> None:
            for j, reading in zip(idx, handle.gate_readings() or ()):
                read[j] = reading

        greedy_generate(model, prompts, max_new_tokens=1, batch_size=batch_size, on_batch=on_batch)
    return read

