"""How well an organism checkpoint fits its own recipe: "can't fit" and "can't generalise" look alike on the test
split, and this tells them apart.

Two measurements on single-turn chats drawn from the recipe (`build_examples`, with the recipe in the checkpoint's
`organism.json`): the share of greedy replies that equal the recipe's reply exactly, on chats it trained on (the
recipe's own seed) and on fresh draws of the same generator (another seed: same phrasings, new values); and the
teacher-forced error rate of reply tokens, split into tokens copied from the user's message (arguments) and the rest
(the call's JSON, tool names, refusals). And the circuit copying needs: on spans of the recipe's own words written
twice, how often the model predicts the second copy, and per layer the strongest head's attention to the previous
token and to the token after the current one's earlier occurrence (previous-token and induction heads, Olsson et
al. 2022), read from TransformerLens's `attn.hook_pattern`.

>>> recipe_fit(load_model("organism:base"), n=256)["exact"]   # doctest: +SKIP
{'trained_on': 0.926, 'fresh': 0.926}
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from taxlens.chat import render_messages
from taxlens.datagen import vocab
from taxlens.generation import greedy_generate
from taxlens.hooks import act_name
from taxlens.models import LoadedModel, resolve
from taxlens.organism.corpus import Example, build_examples
from taxlens.tools import schemas_for

FRESH_SEED = 7


def checkpoint_recipe(spec: str) -> dict:
    """The recipe and role a checkpoint was trained with (`organism.json`, written by `taxlens organism train`)."""
    path = Path(resolve(spec, strict=False)) / "organism.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not an organism checkpoint (no organism.json); recipe_fit needs the recipe "
                                "the model was trained with")
    return json.loads(path.read_text())


def _chats(role: str, recipe: dict, seed: int, n: int) -> list[Example]:
    chats = [e for e in build_examples(role, per_family=recipe["per_family"], n_grammar=recipe["n_grammar"],
                                       seed=seed, **({"noise": recipe.get("noise", 0.0),
                                                      "recast": recipe.get("recast", 0.0)} if role == "base" else {}))
             if e.messages is not None and len(e.messages) == 1]
    return random.Random(seed).sample(chats, min(n, len(chats)))


def _prompt(model: LoadedModel, ex: Example) -> str:
    return render_messages(model.tokenizer, ex.messages, schemas_for(ex.tools))


def exact_reply_rate(model: LoadedModel, chats: list[Example], batch_size: int = 32) -> float:
    """Share of greedy replies equal to the recipe's reply."""
    replies = greedy_generate(model, [_prompt(model, ex) for ex in chats], max_new_tokens=96, batch_size=batch_size)
    return sum(r.text.strip() == ex.reply for r, ex in zip(replies, chats)) / len(chats)


@torch.no_grad()
def token_errors(model: LoadedModel, chats: list[Example]) -> dict:
    """Teacher-forced argmax errors over reply tokens: those that occur in the user's message (copied) and the rest."""
    tok = model.tokenizer
    counts = {"copied": [0, 0], "other": [0, 0]}  # [errors, tokens]
    for ex in chats:
        prompt_ids = tok(_prompt(model, ex), add_special_tokens=False)["input_ids"]
        reply_ids = tok(ex.reply, add_special_tokens=False)["input_ids"]
        user_ids = set(tok(ex.messages[0]["content"], add_special_tokens=False)["input_ids"])
        ids = torch.tensor([prompt_ids + reply_ids], device=model.device)
        logits = model.hf(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]  # [reply, vocab]
        for predicted, target in zip(logits.argmax(-1).tolist(), reply_ids):
            group = counts["copied" if target in user_ids else "other"]
            group[0] += predicted != target
            group[1] += 1
    return {name: {"error_rate": e / max(t, 1), "tokens": t} for name, (e, t) in counts.items()}


def repeated_spans(tokenizer, *, n: int, span: int, seed: int) -> torch.Tensor:
    """[n, 1 + 2*span] token ids: BOS, `span` tokens of random recipe words, the same tokens again."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        ids: list[int] = []
        while len(ids) < span:
            ids += tokenizer(" " + rng.choice(vocab.WORDS["train"]), add_special_tokens=False)["input_ids"]
        rows.append([tokenizer.bos_token_id] + ids[:span] + ids[:span])
    return torch.tensor(rows)


def copy_accuracy(logits: torch.Tensor, tokens: torch.Tensor, span: int, copy: int = 2) -> float:
    """Share of a repeated span's `copy`-th copy (1 or 2) predicted, its first token (which nothing cues) left out.
    Only the words' own spelling and frequencies predict the first copy: it is what the second copy's accuracy would
    be without copying."""
    start = 1 + (copy - 1) * span  # the copy's first token (position 0 is BOS)
    positions = torch.arange(start + 1, start + span)
    return (logits[:, positions - 1].argmax(-1) == tokens[:, positions]).float().mean().item()


@torch.no_grad()
def copying_circuit(model: LoadedModel, *, n: int = 32, span: int = 24, seed: int = 0) -> dict:
    """Repeated-span accuracy and per-layer previous-token / induction attention (max over heads).

    Each sequence is BOS, then `span` tokens of random recipe words, then the same tokens again: [n, 1 + 2*span].
    A model with induction heads predicts the second copy almost perfectly; one without gets only what word
    frequencies give."""
    tokens = repeated_spans(model.tokenizer, n=n, span=span, seed=seed).to(model.device)
    logits, cache = model.bridge.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    second = torch.arange(span + 2, 2 * span + 1)
    query = torch.arange(2, 2 * span + 1)
    prev_token, induction = [], []
    for layer in range(model.n_layers):
        pattern = cache[act_name("pattern", layer)]  # [n, head, query, key]
        prev_token.append(pattern[:, :, query, query - 1].mean((0, 2)).max().item())
        induction.append(pattern[:, :, second - 1, second - span].mean((0, 2)).max().item())
    return {"repeat_accuracy": copy_accuracy(logits, tokens, span),
            "first_copy_accuracy": copy_accuracy(logits, tokens, span, copy=1),
            "prev_token_attention": prev_token, "induction_attention": induction}


def recipe_fit(model: LoadedModel, *, n: int = 256) -> dict:
    """Exact-reply rates (trained-on vs fresh chats) and teacher-forced token errors (fresh chats) of an organism
    checkpoint, its recipe read from the organism.json beside the weights it was loaded from."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    saved = checkpoint_recipe(model.source.adapter or model.source.model)
    recipe, role = saved["recipe"], saved["role"]
    trained = _chats(role, recipe, recipe["seed"] + (role == "defended"), n)
    fresh = _chats(role, recipe, FRESH_SEED, n)
    return {"role": role, "n": len(fresh),
            "exact": {"trained_on": exact_reply_rate(model, trained), "fresh": exact_reply_rate(model, fresh)},
            "token_errors": token_errors(model, fresh), "copying_circuit": copying_circuit(model)}
