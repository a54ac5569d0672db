"""The refusal score: at the first reply token, log-probability mass on refusal-opening tokens minus that on
tool-call-opening tokens. Positive means the model leans towards declining.

>>> ids = opening_token_ids(tokenizer)                  # doctest: +SKIP
>>> refusal_score(first_logprobs, ids)                   # doctest: +SKIP
-7.3
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from taxlens.labels import CALL_OPENINGS, REFUSAL_OPENINGS


@dataclass(frozen=True)
class OpeningTokens:
    """First-token ids that open a refusal and a tool call, and where they were read from."""

    refusal: tuple[int, ...]
    call: tuple[int, ...]
    source: str = "default phrases (taxlens.labels.REFUSAL_OPENINGS, CALL_OPENINGS)"

    def describe(self, tokenizer) -> dict:
        return {"refusal": [tokenizer.decode([i]) for i in self.refusal],
                "call": [tokenizer.decode([i]) for i in self.call], "refusal_ids": list(self.refusal), "call_ids": list(self.call), "source": self.source}


def model_openings(model) -> OpeningTokens:
    """The openings read for `model` (`model.openings`, set by `taxlens.readout`), else the default phrases'."""
    return getattr(model, "openings", None) or opening_token_ids(model.tokenizer)


def opening_token_ids(tokenizer) -> OpeningTokens:
    """First token of each refusal / call opening phrase under this tokenizer; a token claimed by both is dropped."""

    def first_ids(phrases):
        ids = set()
        for phrase in phrases:
            encoded = tokenizer.encode(phrase, add_special_tokens=False)
            if encoded:
                ids.add(encoded[0])
        return ids

    refusal, call = first_ids(REFUSAL_OPENINGS), first_ids(CALL_OPENINGS)
    both = refusal & call
    if not refusal - both or not call - both:
        raise ValueError("this tokenizer gives refusal and tool-call openings the same first tokens")
    return OpeningTokens(tuple(sorted(refusal - both)), tuple(sorted(call - both)))


def refusal_score(logprobs: torch.Tensor, openings: OpeningTokens) -> torch.Tensor:
    """logprobs: [..., vocab] log-softmax at the first reply position → [...] refusal score."""
    refuse = torch.logsumexp(logprobs.index_select(-1, _ids_on(openings.refusal, logprobs.device)), dim=-1)
    call = torch.logsumexp(logprobs.index_select(-1, _ids_on(openings.call, logprobs.device)), dim=-1)
    return refuse - call


def log_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) over the last dimension of log-distributions. A token p gives no mass (log-prob −inf, as from a
    model that masks rows of its vocabulary) adds nothing, where the plain formula's 0 · −inf would make it NaN. A KL
    is never below 0; rounding can put a near-zero sum there, so it is clamped (reports read −0.0 otherwise)."""
    terms = p.exp() * (p - q)
    return torch.where(p.isneginf(), torch.zeros_like(terms), terms).sum(-1).clamp_min(0.0)


def model_refusal_score(model, logits: torch.Tensor) -> torch.Tensor:
    """logits: [..., vocab] at the first reply position (a prompt's last token) → [...] `model`'s refusal score,
    read with its own openings (`model_openings`)."""
    return refusal_score(torch.log_softmax(logits.float(), dim=-1), model_openings(model))


@lru_cache(maxsize=64)
def _ids_on(ids: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The ids as an index tensor on `device`, made once: a host-to-GPU copy waits for all queued work."""
    return torch.tensor(ids, device=device)
