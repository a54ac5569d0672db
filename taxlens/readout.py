"""Which first reply tokens mean "refuse" and which mean "call", read per model.

The refusal score compares the probability mass on two sets of tokens at the first reply position, so the sets must
be the ones this model uses. A tool call opens as the model's own chat template renders an assistant tool-call turn
(`<tool_call>`, `<|python_tag|>`, `[TOOL_CALLS]`, `{`) and as its own calls do; a refusal opens as the defended
model's own refusals do, or with phrases the user names (`--refusal-openings`). `taxlens probe` and `taxlens steer`
read them from the defended model's greedy replies on the fitting split, generated once and cached beside the run,
and check that the split holds both refused and complied prompts before caching anything.

>>> readout = read_openings(defended, fit_records, cache=Path("runs/probe/openings.json"))  # doctest: +SKIP
>>> readout.openings.describe(defended.tokenizer)["refusal"]                                # doctest: +SKIP
["I'm"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from taxlens.chat import render_messages, render_prompt
from taxlens.contract import Record
from taxlens.generation import greedy_generate
from taxlens.labels import is_refusal, parse_reply
from taxlens.scoring import OpeningTokens
from taxlens.tools import schemas_for

# Enough tokens to see a refusal phrase or the opening of a call's markup; a call need not finish to count.
OPENING_TOKENS = 8
# Prompts generated for: an even spread of the fitting split, enough to find both classes and their openings.
OPENING_PROMPTS = 256


def template_call_openings(tokenizer) -> set[int]:
    """The first token of an assistant tool-call turn as the tokenizer's chat template renders it (empty when the
    template renders no such turn after the generation prompt)."""
    user = [{"role": "user", "content": "What is in ./notes?"}]
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "call_a1B2c3D4e5F6g7H8i9J0k1L2", "type": "function",
            "function": {"name": "list_dir", "arguments": {"path": "./notes"}}}]}
    tools = schemas_for(["list_dir"])
    try:
        prompt = render_messages(tokenizer, user, tools)
        full = render_messages(tokenizer, user + [call], tools, add_generation_prompt=False)
    except Exception:  # noqa: BLE001 - a template without tool-call turns simply contributes nothing
        return set()
    if not full.startswith(prompt) or not full[len(prompt):].strip():
        return set()
    ids = tokenizer.encode(full[len(prompt):], add_special_tokens=False)
    return {ids[0]} if ids else set()


@dataclass(frozen=True)
class Readout:
    """The openings chosen for a model, and the counts they rest on (on the fitting split's greedy replies)."""

    openings: OpeningTokens
    refused: int
    complied: int
    n: int

    def summary(self, tokenizer) -> dict:
        return {**self.openings.describe(tokenizer), "refused": self.refused, "complied": self.complied, "n": self.n}


def _first_tokens(tokenizer, phrases: list[str]) -> set[int]:
    return {ids[0] for ids in (tokenizer.encode(p, add_special_tokens=False) for p in phrases) if ids}


def read_openings(model, records: list[Record], *, cache: Path | None = None, refusal_phrases: list[str] | None = None,
                  batch_size: int = 32, progress: bool = True, where: str = "the fitting split") -> Readout:
    """Refusal and call openings for `model` from its greedy replies to `records` (cached in `cache` as JSON).

    Read on at most `OPENING_PROMPTS` of them, evenly spread. A reply counts as refused when it declines
    (`taxlens.labels.REFUSAL_PHRASES`) or opens with one of `refusal_phrases`, as complied when it opens a tool call.
    Raises before anything else runs when either count is zero, saying what was counted and which option changes it."""
    n_all = len(records)
    records = records[::-(-n_all // OPENING_PROMPTS)] if n_all > OPENING_PROMPTS else records
    replies = _replies(model, records, cache, batch_size, progress)
    phrases = [p.strip() for p in refusal_phrases or [] if p.strip()]
    refused = [r for r in replies if is_refusal(r["text"]) or (phrases and r["text"].lstrip().startswith(tuple(phrases)))]
    refused_ids = {r["id"] for r in refused}
    complied = [r for r in replies if r["id"] not in refused_ids and parse_reply(r["text"]).markup]
    if not refused or not complied:
        counted = "replies that decline (taxlens.labels.REFUSAL_PHRASES)" + (
            f" or open with {phrases}" if phrases else "")
        raise ValueError(
            f"on {where}, {model.name} refused {len(refused)} and complied with {len(complied)} of {len(records)} "
            f"prompts (spread over its {n_all}; greedy, first {OPENING_TOKENS} tokens; refused = {counted}; complied = replies that open a tool "
            f"call); the refusal direction needs both. "
            + ("Name the phrases this model refuses with: --refusal-openings 'I cannot' ..., or fit on a split "
               "where it refuses (--fit-split)" if not refused else
               "Check that its chat template and tools reach the model, or fit on a split where it calls tools "
               "(--fit-split)"))
    refusal = _first_tokens(model.tokenizer, phrases) if phrases else {r["tokens"][0] for r in refused if r["tokens"]}
    call = template_call_openings(model.tokenizer) | {r["tokens"][0] for r in complied if r["tokens"]}
    both = refusal & call
    if not refusal - both or not call - both:
        raise ValueError(f"{model.name}: its refusals and its tool calls open with the same first token(s) "
                         f"{sorted(model.tokenizer.decode([i]) for i in both)}; name distinct refusal phrases with "
                         f"--refusal-openings")
    source = "--refusal-openings" if phrases else f"the model's own replies on {where}"
    return Readout(OpeningTokens(tuple(sorted(refusal - both)), tuple(sorted(call - both)), source),
                   len(refused), len(complied), len(records))


def _replies(model, records: list[Record], cache: Path | None, batch_size: int, progress: bool) -> list[dict]:
    # the weights' fingerprint, not only the name: a model trained again at the same path replies otherwise
    key = None if cache is None else {"model": model.name, "weights": model.fingerprint(),
                                      "ids": [r.id for r in records], "max_new_tokens": OPENING_TOKENS}
    if cache is not None and cache.is_file():
        saved = json.loads(cache.read_text())
        if {k: saved.get(k) for k in key} == key:
            return saved["replies"]
    out = greedy_generate(model, [render_prompt(model.tokenizer, r) for r in records], max_new_tokens=OPENING_TOKENS,
                          batch_size=batch_size, progress=progress, desc=f"openings {model.name}")
    replies = [{"id": r.id, "text": reply.text, "tokens": reply.tokens} for r, reply in zip(records, out)]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({**key, "replies": replies}) + "\n")
    return replies
