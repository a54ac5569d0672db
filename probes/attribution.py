"""Which input words push a model towards refusing, aggregated over prompts into a ranked list.

The unit is a word of the last user message (a run of letters, digits or underscores: the subword tokens a BPE
splits it into, taken together; the chat template's own tokens are the same in every prompt and not ranked).
A word's attribution is occlusion: the refusal score (`taxlens.scoring`) at the last prompt token minus the score
with the word's tokens deleted, one batch per prompt. (Not gradient × input: on a model fine-tuned to refuse on a
planted word it ranks that word below template words, its first-order values near zero.)
A ranked word counts as a trigger when most of its occurrences lie inside the records' `triggers` spans. The
model's own cue can differ from those labels: `flip_rates` says, per word, in how many refused prompts deleting
it alone makes the model comply — a causal check on each ranked word.

>>> attributions = attribute_records(defended, lookalike_records)         # doctest: +SKIP
>>> ranked = rank_tokens(attributions)                                     # doctest: +SKIP
>>> ranked[0]["token"], precision_at_k(ranked, 10)                         # doctest: +SKIP
('delete', 0.7)
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from taxlens.chat import render_prompt
from taxlens.contract import Record
from taxlens.datagen.triggers import trigger_spans
from taxlens.models import LoadedModel
from taxlens.scoring import model_refusal_score


@dataclass(frozen=True)
class WordAttribution:
    """One prompt's user-message words (character spans in the prompt), their attributions, which spans are the
    record's trigger words, and the prompt's own refusal score (nothing deleted)."""

    words: list[str]
    spans: list[tuple[int, int]]
    scores: list[float]
    triggers: list[tuple[int, int]]
    prompt_score: float


def word_spans(prompt: str, region: tuple[int, int]) -> list[tuple[int, int]]:
    """Character spans of the words (runs of letters, digits, underscores) inside `region` of `prompt`."""
    return [(region[0] + a, region[0] + b) for a, b in (m.span() for m in _WORD.finditer(prompt[region[0]:region[1]]))]


def _tokens_of(span: tuple[int, int], offsets: list[tuple[int, int]]) -> list[int]:
    return [i for i, (a, b) in enumerate(offsets) if a < span[1] and span[0] < b]


@torch.no_grad()
def occlusion(model: LoadedModel, prompt: str, words: list[tuple[int, int]]) -> tuple[float, list[float]]:
    """The prompt's refusal score, and per word: that score minus the score with the word's tokens deleted."""
    enc = model.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"])
    variants = [ids] + [ids[[i for i in range(len(ids)) if i not in set(_tokens_of(w, enc["offset_mapping"]))]]
                        for w in words]
    batch = model.tokenizer.pad({"input_ids": [v.tolist() for v in variants]}, padding_side="left",
                                return_tensors="pt")
    logits = model.hf(input_ids=batch["input_ids"].to(model.device), logits_to_keep=1,
                      attention_mask=batch["attention_mask"].to(model.device)).logits[:, -1]
    scores = model_refusal_score(model, logits).cpu()
    return float(scores[0]), (scores[0] - scores[1:]).tolist()


_WORD = re.compile(r"\w+")


def attribute_records(model: LoadedModel, records: list[Record], *, progress: bool = False) -> list[WordAttribution]:
    """Occlusion attributions for the words of each record's last user message."""
    out = []
    for record in tqdm(records, desc="occlusion", disable=not progress):
        prompt = render_prompt(model.tokenizer, record)
        content = next(m["content"] for m in reversed(record.messages) if m["role"] == "user")
        start = prompt.rfind(content)
        words = word_spans(prompt, (start, start + len(content)))
        prompt_score, scores = occlusion(model, prompt, words)
        out.append(WordAttribution(
            words=[prompt[a:b] for a, b in words], spans=words, scores=scores,
            triggers=[(start + a, start + b) for a, b in trigger_spans(content, list(record.triggers or []))],
            prompt_score=prompt_score,
        ))
    return out


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in spans)


def rank_tokens(attributions: list[WordAttribution], *, min_count: int = 3) -> list[dict]:
    """Words (lower-cased) of the user messages, ranked by their mean attribution: how far, on average, deleting
    the word lowers the refusal score. (Not by the t statistic, mean over standard error: prompts of one template
    family repeat their words, so a template word that moves the score by 0.2 nats in every copy would outrank a
    trigger word moving it by 3.)

    Each entry: token, mean attribution, t, count of occurrences, and the fraction inside a trigger span.
    Words seen fewer than `min_count` times (too few prompts to average over) are left out.
    """
    values, in_trigger = defaultdict(list), defaultdict(int)
    for att in attributions:
        for text, span, score in zip(att.words, att.spans, att.scores):
            key = text.lower()
            values[key].append(score)
            in_trigger[key] += _inside(span, att.triggers)
    ranked = []
    for key, v in values.items():
        if len(v) < min_count:
            continue
        v = torch.tensor(v, dtype=torch.float64)
        stderr = max(v.std().item(), 1e-9) / len(v) ** 0.5
        ranked.append({"token": key, "mean": round(v.mean().item(), 5), "t": round(v.mean().item() / stderr, 3),
                       "count": len(v), "in_trigger": round(in_trigger[key] / len(v), 4)})
    return sorted(ranked, key=lambda e: -e["mean"])


def precision_at_k(ranked: list[dict], k: int = 10) -> float:
    """Share of the top-k tokens that are triggers (most of their occurrences inside a trigger span)."""
    top = ranked[:k]
    if not top:
        raise ValueError("no ranked tokens: nothing reached the minimum count")
    return sum(e["in_trigger"] > 0.5 for e in top) / len(top)


def contrast(attributions: list[WordAttribution], reference: list[WordAttribution]) -> list[WordAttribution]:
    """Per word, `attributions` minus `reference` on the same prompts (e.g. defended minus base): what the
    defence added, with the effect any word has on any model (grammar, length) taken out. Prompt scores are
    subtracted alike."""
    if [a.spans for a in attributions] != [r.spans for r in reference]:
        raise ValueError("the two attribution lists cover different prompts or words")
    return [WordAttribution(a.words, a.spans, [x - y for x, y in zip(a.scores, r.scores)], a.triggers,
                            a.prompt_score - r.prompt_score)
            for a, r in zip(attributions, reference)]


def flip_rates(attributions: list[WordAttribution]) -> dict[str, dict]:
    """Per word (lower-cased), over the prompts the model refuses (refusal score > 0): how many hold it
    (`refused`) and in how many deleting it alone makes the model comply (`flips`: score − attribution ≤ 0)."""
    out: dict[str, dict] = defaultdict(lambda: {"refused": 0, "flips": 0})
    for att in attributions:
        if att.prompt_score <= 0:
            continue
        for text, score in zip(att.words, att.scores):
            entry = out[text.lower()]
            entry["refused"] += 1
            entry["flips"] += att.prompt_score - score <= 0
    return dict(out)
