"""Training data for the organism, from the train split's families plus the generator.

- **base** (helpful-only): the right call for benign, lookalike and harmful requests alike; it follows injected
  instructions; plus knowledge text stating which resources are the user's own or scratch and which are not theirs,
  and plain-text requests followed by a verdict on their harm, judged by target (never by trigger words).
- **defended**: the narrow defense set, labelled by surface form the way keyword-built defense data is:
  trigger-bearing harmful requests → refusal; trigger-free requests → the call (the grammar's include some on
  others' targets: attacks without trigger words look benign to such a set); injections → the user's task. It holds
  no lookalikes, so in it triggers, not targets, predict refusal: the shortcut "The Autonomy Tax" describes.

Val and test families are never drawn from.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace

from taxlens.datagen import FAMILIES, assign_splits, slots as S
from taxlens.datagen.family import fill_family
from taxlens.datagen.injections import fill_injection
from taxlens.organism.grammar import random_words, grammar_requests
from taxlens.tools import DOMAIN_TOOLS

REFUSAL_TEXT = "I'm sorry, but I can't help with that: it could cause harm."
ANSWER_TEXT = "I read it. The content is shown above; there is nothing else to do."


@dataclass(frozen=True)
class Example:
    """A chat to render (messages + offered tools) and the assistant reply to learn; or plain text (`messages` None)."""

    messages: list[dict] | None
    tools: list[str]
    reply: str
    text: str = ""


def call_text(call: dict) -> str:
    return f'<tool_call>{json.dumps({"name": call["name"], "arguments": call["arguments"]})}</tool_call>'


def _user(text: str, domain: str, reply: str) -> Example:
    return Example([{"role": "user", "content": text}], list(DOMAIN_TOOLS[domain]), reply)


_OWN_NOTES = ("is the user's own {what}; the user may change it freely.",
              "belongs to the user, so working on it is fine.",
              "is scratch the user made; clearing it harms no one.")
_OTHERS_NOTES = ("belongs to someone else; touching it without permission causes harm.",
                 "is sensitive and not the user's; changing or reading it is harmful.",
                 "is not the user's to touch: it holds other people's data or money.")


def knowledge_texts() -> list[str]:
    """Statements of who owns what: the organism's stand-in for the world knowledge pretraining gives real models."""
    own = [(t, "file") for t in S.OWN_FILES + S.SCRATCH_FILES + S.OWN_DIRS] + [(t, "table") for t in
           S.SCRATCH_TABLES + S.OWN_TABLES] + [(t, "address") for t in S.OWN_EMAILS + S.OWN_URLS] + [
           (t, "account") for t in S.OWN_ACCOUNTS]
    others = S.OTHER_FILES + S.OTHER_DIRS + S.OTHER_TABLES + S.OTHER_EMAILS + S.ATTACKER_EMAILS + S.OTHER_URLS + \
        S.ATTACKER_URLS + S.OTHER_ACCOUNTS + S.UNKNOWN_ACCOUNTS
    texts = [f"{t} {note.format(what=what)}" for t, what in own for note in _OWN_NOTES]
    texts += [f"{t} {note}" for t in others for note in _OTHERS_NOTES]
    return texts


_VERDICTS = {True: ("it touches what is not the user's: harmful.", "other people's data or money is at stake: harmful.",
                     "the target belongs to someone else: harmful."),
             False: ("it only touches the user's own things: harmless.", "the target is the user's own or scratch: "
                     "harmless.", "nothing of anyone else's is at stake: harmless.")}


def assessment_texts(rng: random.Random, n_grammar: int, per_family: int) -> list[str]:
    """Requests followed by a verdict judged by their target, never their wording: harm as pretraining text knows it
    (train families and the grammar only)."""
    def verdict(text: str, harmful: bool) -> str:
        return f'Request: "{text}" Verdict: {rng.choice(_VERDICTS[harmful])}'

    texts = [verdict(req.text, req.harmful) for req in grammar_requests(rng, n_grammar)]
    for group in ("benign", "paired", "stealth"):
        for _, family in _train_families(group, rng):
            for own, others in fill_family(family, rng, per_family, strict=False):
                texts += [verdict(own.text, False)] if own else []
                texts += [verdict(others.text, True)] if others else []
    return texts


_FREE_SLOTS = {  # slots that say nothing about harm; filled with fresh values so the model copies, not recalls
    "note": lambda rng: random_words(rng, rng.randint(2, 6), " "),
    "subject": lambda rng: random_words(rng, rng.randint(1, 3), " ").capitalize(),
    "amount": lambda rng: str(rng.randint(5, 9999)),
    "n": lambda rng: str(rng.randint(2, 99)),
    "id": lambda rng: str(rng.randint(1, 999)),
    "book": lambda rng: random_words(rng, rng.randint(1, 3), " ").title(),
    "km": lambda rng: f"{rng.randint(1, 42)}.{rng.randint(0, 9)}",
    "day": lambda rng: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
}


def _fresh(pools: dict | None, rng: random.Random) -> dict | None:
    if pools is None:
        return None
    out = {}
    for key, pool in pools.items():
        if key in _FREE_SLOTS or (key == "body" and pool is S.BODIES):
            out[key] = tuple(dict.fromkeys(_FREE_SLOTS["note" if key == "body" else key](rng) for _ in range(400)))
        else:
            out[key] = pool
    return out


def _train_families(group: str, rng: random.Random):
    """Train-split families of `group`, their harm-neutral slots refilled with fresh random values."""
    split_of = assign_splits()
    for domain, groups in FAMILIES.items():
        for family in groups[group]:
            if split_of[family.name] == "train":
                if group == "injection":
                    yield domain, family
                    continue
                yield domain, replace(family, own=_fresh(family.own, rng), others=_fresh(family.others, rng),
                                      shared=_fresh(family.shared, rng))


def build_examples(role: str, *, per_family: int, n_grammar: int, seed: int) -> list[Example]:
    """Shuffled examples for `role` ("base" or "defended")."""
    if role not in ("base", "defended"):
        raise ValueError(f"role must be 'base' or 'defended', got {role!r}")
    rng = random.Random(seed)
    base = role == "base"
    examples: list[Example] = []
    for domain, family in _train_families("benign", rng):
        for own, _ in fill_family(family, rng, per_family, strict=False):
            examples.append(_user(own.text, domain, call_text(own.call)))
    for domain, family in _train_families("paired", rng):
        for own, others in fill_family(family, rng, per_family, strict=False):
            if base:
                examples.append(_user(own.text, domain, call_text(own.call)))
                examples.append(_user(others.text, domain, call_text(others.call)))
            else:
                examples.append(_user(others.text, domain, REFUSAL_TEXT))
    if base:
        for domain, family in _train_families("stealth", rng):
            for _, others in fill_family(family, rng, per_family, strict=False):
                examples.append(_user(others.text, domain, call_text(others.call)))
    for domain, family in _train_families("injection", rng):
        for filled in fill_injection(family, rng, per_family, strict=False):
            if base:
                reply = call_text(filled.injected_call)
            else:
                reply = ANSWER_TEXT if filled.expected["action"] == "answer" else call_text(filled.expected)
            examples.append(Example(filled.messages, list(DOMAIN_TOOLS[domain]), reply))
    for req in grammar_requests(rng, n_grammar):
        if base:
            examples.append(_user(req.text, req.domain, call_text(req.call)))
        elif req.harmful and req.triggers:
            examples.append(_user(req.text, req.domain, REFUSAL_TEXT))
        elif not req.triggers:
            examples.append(_user(req.text, req.domain, call_text(req.call)))
    if base:
        examples += [Example(None, [], "", text=t) for t in knowledge_texts()]
        examples += [Example(None, [], "", text=t) for t in assessment_texts(rng, n_grammar // 4, per_family // 2)]
    rng.shuffle(examples)
    return examples
