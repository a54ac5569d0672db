"""Leakage between the organism's training text and the val and test records: a val or test phrasing the training
text can produce is a train phrasing, and a figure measured on it says nothing about generalisation.

Two checks, over the full build (the recipe's own sizes and seeds):

- **fragments**: a run of the training templates (pretraining grammar, knowledge and verdict texts, the train
  families, injections) holding 4 or more fixed words, its slots matching anything, found in a val or test record;
- **shared runs**: 6 consecutive words that a val or test record shares with a train record or with any text the
  organism trains on (prompts, replies, plain texts), target strings included.

>>> found = find_leaks(load_records("datasets/toolcalls.jsonl"))        # doctest: +SKIP
>>> found.summary()["fragments"]["records"]                               # doctest: +SKIP
164
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass, field

from taxlens.contract import Record

FRAGMENT_WORDS = 4
RUN_WORDS = 6
_WORD = re.compile(r"[a-z0-9']+")
_TEMPLATE_TOKEN = re.compile(r"\{[a-z_]*\}|[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def record_texts(record: Record) -> list[str]:
    """Everything a val or test record shows the model, one text per message and per argument value of the calls
    they hold (a run of words across two of them is not a phrasing)."""
    parts = []
    for m in record.messages:
        parts.append(str(m.get("content") or ""))
        for c in m.get("tool_calls") or []:
            args = c.get("function", {}).get("arguments", {})
            parts += [str(v) for v in args.values()] if isinstance(args, dict) else [str(args)]
    return parts


def fragments(template: str, n_fixed: int = FRAGMENT_WORDS) -> list[str]:
    """The shortest pieces of `template` holding `n_fixed` fixed words (starting and ending on one), as regexes over
    a space-joined word sequence in which each slot matches one or more words."""
    tokens = _TEMPLATE_TOKEN.findall(template.lower())
    fixed = [i for i, t in enumerate(tokens) if not t.startswith("{")]
    out = []
    for k in range(len(fixed) - n_fixed + 1):
        piece = tokens[fixed[k]:fixed[k + n_fixed - 1] + 1]
        out.append(" ".join(r"(?:\S+ )*?\S+" if t.startswith("{") else re.escape(t) for t in piece))
    return out


def shingles(text: str, n: int = RUN_WORDS) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


@dataclass
class Leaks:
    """Per check, the leaking val/test record ids with one witness each (a fragment's regex, or a shared run)."""

    fragments: dict[str, str] = field(default_factory=dict)
    shared_runs: dict[str, str] = field(default_factory=dict)
    checked: Counter = field(default_factory=Counter)  # val/test records checked, by kind
    kind_of: dict[str, str] = field(default_factory=dict)

    def summary(self, examples: int = 5) -> dict:
        def part(found: dict[str, str]) -> dict:
            witnesses = Counter(found.values())
            return {"records": len(found), "of": sum(self.checked.values()),
                    "by_kind": dict(Counter(self.kind_of.get(i, "?") for i in found)),
                    "most_common": [{"witness": w, "records": n} for w, n in witnesses.most_common(examples)]}
        return {"fragments": part(self.fragments), "shared_runs": part(self.shared_runs)}


def task_texts(task) -> list[str]:
    """What an agent task shows the model: its messages, and the text its environment returns (files, pages)."""
    env = task.environment
    return record_texts(task) + list(env.files.values()) + [str(r.get("body", "")) for r in env.routes]


def check(records: list, templates: list[str], training_texts: list[str], texts_of=record_texts) -> Leaks:
    """Both checks of the val and test `records` (prompt records, or agent tasks with `texts_of=task_texts`) against
    the train ones among them, `templates` (strings with `{slot}`s) and `training_texts` (filled texts the model
    trains on)."""
    held_out = [r for r in records if r.split in ("val", "test")]
    patterns = sorted({f for t in templates for f in fragments(t)})
    compiled = [re.compile(r"(?:^| )" + p + r"(?= |$)") for p in patterns]
    seen: set[tuple[str, ...]] = set()
    for text in training_texts + [t for r in records if r.split == "train" for t in texts_of(r)]:
        seen |= shingles(text)
    leaks = Leaks(checked=Counter(r.kind for r in held_out), kind_of={r.id: r.kind for r in held_out})
    for r in held_out:
        joined = [" ".join(words(t)) for t in texts_of(r)]
        hit = next((p for p, c in zip(patterns, compiled) if any(c.search(j) for j in joined)), None)
        if hit is not None:
            leaks.fragments[r.id] = hit.replace(r"(?:\S+ )*?\S+", "{…}").replace("\\", "")
        shared = next((s for s in sorted(set().union(*map(shingles, texts_of(r)))) if s in seen), None)
        if shared is not None:
            leaks.shared_runs[r.id] = " ".join(shared)
    return leaks


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value] if _WORD.search(value.lower()) else []
    if isinstance(value, dict):  # a bank written for val and test only is not training text
        return [s for k, v in value.items() if k != "held_out" for s in _strings(v)]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _strings(v)]
    return []


def organism_templates() -> list[str]:
    """Every template the organism's training text is filled from: the grammar's, the vocabulary's and the corpus's
    string constants, and the train banks of system messages, attack styles, payloads and result layouts."""
    from taxlens import datagen
    from taxlens.datagen import agent_scenes, agent_tasks, grammar, injections, vocab
    from taxlens.organism import corpus, lookups

    out = [s for module in (grammar, vocab, corpus, lookups) for name, value in vars(module).items()
           if name.lstrip("_").isupper() and name not in ("WORDS", "PEOPLE") for s in _strings(value)]
    out += [clause for clauses in datagen._THEN.values() for clause, _ in clauses] + list(datagen.SYSTEMS["train"])
    out += list(injections.ATTACK_STYLES["train"]) + list(injections.RESULTS["train"].values())
    out += [p.instruction for payloads in injections.PAYLOADS["train"].values() for p in payloads]
    split_of = agent_tasks.scene_splits()
    out += [p for scene in agent_scenes.SCENES if split_of[scene.name] == "train"
            for p in scene.benign + scene.paired + scene.stealth] + list(agent_tasks.INSTRUCTIONS["train"])
    out += list(agent_tasks.ACTS["train"].values())
    return out


@lru_cache(maxsize=2)  # the full build is the same for every file checked in a process
def organism_texts(recipe) -> list[str]:
    """Every filled text the organism trains on: each of the base's fresh passes, its last pass and the defended set,
    at the recipe's sizes and seeds."""
    from taxlens.organism.train import base_passes, defended_set, polish_set

    return [text for ex in base_passes(recipe) + polish_set(recipe) + defended_set(recipe)
            for text in [str(m.get("content") or "") for m in ex.messages or []] + [ex.reply, ex.text]]


def find_leaks(records: list) -> Leaks:
    """Both checks for prompt `records`, or agent tasks, against the shipped recipe's full build."""
    from taxlens.agent.tasks import AgentTask
    from taxlens.organism.recipe import Recipe

    texts_of = task_texts if records and isinstance(records[0], AgentTask) else record_texts
    return check(records, organism_templates(), organism_texts(Recipe()), texts_of)
