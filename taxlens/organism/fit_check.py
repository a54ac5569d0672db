"""How well an organism checkpoint fits its own recipe: "can't fit" and "can't generalise" look alike on the test
split, and this tells them apart.

Two measurements on single-turn chats drawn from the recipe (`build_examples`, with the recipe in the checkpoint's
`organism.json`): the share of greedy replies that equal the recipe's reply exactly, on chats it trained on (the
recipe's own seed) and on fresh draws of the same generator (another seed: same phrasings, new values); and the
teacher-forced error rate of reply tokens, split into tokens copied from the user's message (arguments) and the rest
(the call's JSON, tool names, refusals).

>>> recipe_fit(load_model("organism:base"), n=256)["exact"]   # doctest: +SKIP
{'trained_on': 0.625, 'fresh': 0.547}
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from taxlens.chat import render_messages
from taxlens.generation import greedy_generate
from taxlens.models import LoadedModel, resolve
from taxlens.organism.corpus import Example, build_examples
from taxlens.tools import schemas_for

FRESH_SEED = 7


def checkpoint_recipe(spec: str) -> dict:
    """The recipe and role a checkpoint was trained with (`organism.json`, written by `taxlens organism train`)."""
    path = Path(resolve(spec)) / "organism.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not an organism checkpoint (no organism.json); recipe_fit needs the recipe "
                                "the model was trained with")
    return json.loads(path.read_text())


def _chats(role: str, recipe: dict, seed: int, n: int) -> list[Example]:
    chats = [e for e in build_examples(role, per_family=recipe["per_family"], n_grammar=recipe["n_grammar"],
                                       seed=seed) if e.messages is not None and len(e.messages) == 1]
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


def recipe_fit(model: LoadedModel, *, n: int = 256) -> dict:
    """Exact-reply rates (trained-on vs fresh chats) and teacher-forced token errors (fresh chats) of an organism
    checkpoint, its recipe read from the organism.json beside the weights it was loaded from."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    saved = checkpoint_recipe(model.name)
    recipe, role = saved["recipe"], saved["role"]
    trained = _chats(role, recipe, recipe["seed"] + (role == "defended"), n)
    fresh = _chats(role, recipe, FRESH_SEED, n)
    return {"role": role, "n": len(fresh),
            "exact": {"trained_on": exact_reply_rate(model, trained), "fresh": exact_reply_rate(model, fresh)},
            "token_errors": token_errors(model, fresh)}
