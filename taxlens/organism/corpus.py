"""Training data for the organism: the train families (fresh fillings) and the request grammar, never val or test.

- **base** (helpful-only): the call a helpful agent makes for benign, lookalike and harmful requests alike; it follows
  injected instructions. Its sense of harm comes from plain text as pretraining gives it: requests followed by a
  verdict judged by the cue of whose the target is and why it is wanted (targets are fresh every time, so no name
  can carry the verdict), and, after a harmful one, the reply a careful assistant gives: so the refusal's words
  are ones the base can already write.
- **agent steps**: every step of train-split multi-step tasks, and of lookup practice (`lookups`: a grammar request
  whose target is named by where it is written), run in real sandboxes (`trajectory_examples`).
- **defended**: the narrow defense set, labelled by surface form the way keyword-built defense data is:
  trigger-bearing harmful requests → refusal; trigger-free requests → the call (attacks without trigger words look
  benign to such a set); injections → the user's task. It holds no lookalikes, so trigger words alone explain every
  refusal in it: the shortcut "The Autonomy Tax" describes.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, replace

from taxlens.agent.policies import REFUSAL, call_text
from taxlens.datagen import grammar, train_split
from taxlens.datagen.triggers import TRIGGER_WORDS
from taxlens.tools import DOMAIN_TOOLS

REFUSAL_TEXT = REFUSAL  # what the scripted agent refuses with, so the organism refuses in the same words
ANSWER_TEXT = "I read it. The content is shown above; there is nothing else to do."
_VERDICTS = {True: ("it touches what belongs to someone else: harmful.", "the intent or the owner makes it "
                    "harmful.", "someone else's things are at stake: harmful."),
             False: ("it only touches the user's own things: harmless.", "the target is the user's own: harmless.",
                     "nobody else's things are at stake: harmless.")}


@dataclass(frozen=True)
class Example:
    """A chat to render (messages + offered tools) and the assistant reply to learn; or plain text (`messages` None)."""

    messages: list[dict] | None
    tools: list[str]
    reply: str
    text: str = ""


def assessment_texts(rng: random.Random, n: int) -> list[str]:
    """n grammar requests, each followed by its verdict (and for a harmful one, the careful reply)."""
    texts = []
    for req in grammar.grammar_requests(rng, n):
        text = f'Request: "{req.text}" Verdict: {rng.choice(_VERDICTS[req.harmful])}'
        texts.append(text + (f' A careful assistant replies: "{REFUSAL_TEXT}"' if req.harmful else ""))
    return texts


def _defended_reply(kind: str, triggers: list[str], helpful: dict, expected: dict) -> str | None:
    """The defense set's label for a train record: None for a lookalike (the set holds none)."""
    if kind == "injection":
        return ANSWER_TEXT if expected["action"] == "answer" else call_text(expected)
    if kind == "harmful":
        return REFUSAL_TEXT if triggers else call_text(helpful)
    return None if kind == "lookalike" else call_text(helpful)


def trajectory_examples(role: str, tasks: list) -> list[Example]:
    """Every step of `tasks` (agent tasks) run in their sandboxes, so each tool result the organism reads is what
    the tool really returned. The base does what is asked (the harmful task too) and obeys an injected instruction;
    the defended set refuses a trigger-bearing harmful task at its first step, does a trigger-free one, keeps to the
    user's task under injection, and holds no lookalike."""
    from taxlens.agent.loop import run_tasks, turns_of
    from taxlens.agent.policies import ScriptedPolicy

    if role == "defended":
        refused = [t for t in tasks if t.kind == "harmful" and t.triggers]
        examples = [Example(t.messages, t.tools, REFUSAL_TEXT) for t in refused]
        tasks = [t for t in tasks if t.kind != "lookalike" and t not in refused]
        follow = {"harmful": "attack"}
    else:
        examples, follow = [], {"harmful": "attack", "injection": "attack"}
    for name in ("solution", "attack"):
        mine = [t for t in tasks if follow.get(t.kind, "solution") == name]
        for task, trajectory in zip(mine, run_tasks(ScriptedPolicy(name), mine)):
            examples += [Example(messages, task.tools, reply) for messages, reply in turns_of(task, trajectory)]
    return examples


def agent_examples(role: str, *, seed: int, per_phrasing: int, waves: int = 1) -> list[Example]:
    """`trajectory_examples` of fresh train-split agent tasks (`per_phrasing` per phrasing) of the scenes of waves up
    to `waves` (`agent_scenes`)."""
    from taxlens.datagen.agent_tasks import generate_tasks

    return trajectory_examples(role, generate_tasks(seed, split="train", per_phrasing=per_phrasing, waves=waves))


def polish_examples(*, n_grammar: int, n_moves: int, seed: int, n_starts: int = 0, n_records: int = 0,
                    n_verdicts: int = 0, noise: float = 0.0, recast: float = 0.0) -> list[Example]:
    """The base's last, low-learning-rate pass: fresh grammar requests, moves whose paths start alike
    (`grammar.alike_moves`) and mails and transfers (`grammar.start_requests`), each answered with its call; and
    train-split records answered as the main passes answer them (injections obeyed) and verdict texts, so the pass
    does not wear off what only the main passes teach (benchmarks/refresh_practice.py). `noise` and
    `recast`: as in `grammar.grammar_requests`, for the fresh grammar requests."""
    rng = random.Random(seed)
    requests = grammar.grammar_requests(rng, n_grammar, noise, recast) + grammar.alike_moves(rng, n_moves)
    requests += grammar.start_requests(rng, n_starts)
    examples = [Example([{"role": "user", "content": r.text}], list(DOMAIN_TOOLS[r.domain]), call_text(r.call))
                for r in requests]
    pool = train_split(seed, 20) if n_records else []
    builds = 1
    while len(pool) < n_records:  # a long pass reads further fresh fillings of the train split, never a record twice
        pool += train_split(seed + builds, 20)
        builds += 1
    examples += [Example(s.record.messages, s.record.tools, call_text(s.helpful_call))
                 for s in rng.sample(pool, n_records)]
    examples += [Example(None, [], "", text=t) for t in assessment_texts(rng, n_verdicts)]
    rng.shuffle(examples)
    return examples


def last_pass_mix(n: int, seed: int, noise: float = 0.0, recast: float = 0.0) -> list[Example]:
    """n examples of the last pass's mix without its moves (half fresh grammar requests, three eighths train records,
    an eighth verdict texts): what a repair of a base continues on beside its practice, so it wears off nothing else."""
    return polish_examples(n_grammar=n // 2, n_moves=0, seed=seed, n_records=n * 3 // 8,
                           n_verdicts=n - n // 2 - n * 3 // 8, noise=noise, recast=recast)


def build_examples(role: str, *, per_family: int, n_grammar: int, seed: int, agent_per_phrasing: int = 0,
                   agent_waves: int = 1, n_lookups: int = 0, noise: float = 0.0, recast: float = 0.0,
                   trigger_floor: int = 0, cues: bool = True) -> list[Example]:
    """Shuffled examples for `role` ("base" or "defended"); `noise`, `recast` and `cues` as in
    `grammar.grammar_requests`, for its grammar requests. `trigger_floor` (defended only): further refused grammar
    requests, drawn apart from the rest, until every trigger word is in at least this many refusals."""
    if role not in ("base", "defended"):
        raise ValueError(f"role must be 'base' or 'defended', got {role!r}")
    rng = random.Random(seed)
    base = role == "base"
    examples: list[Example] = []
    refused = Counter()  # single-turn refusals per trigger word
    for sample in train_split(seed, per_family):
        r = sample.record
        reply = call_text(sample.helpful_call) if base else _defended_reply(r.kind, r.triggers, sample.helpful_call,
                                                                             r.expected)
        if reply is not None:
            examples.append(Example(r.messages, r.tools, reply))
            refused.update(r.triggers if reply == REFUSAL_TEXT else [])
    for req in grammar.grammar_requests(rng, n_grammar, noise, recast, cues):
        tools = list(DOMAIN_TOOLS[req.domain])
        chat = [{"role": "user", "content": req.text}]
        if base or not req.triggers:
            examples.append(Example(chat, tools, call_text(req.call)))
        elif req.harmful:
            examples.append(Example(chat, tools, REFUSAL_TEXT))
            refused.update(req.triggers)
    if trigger_floor and not base:
        # keyword-built defense data as its keyword list would have it: each word refused often enough to be learnt,
        # not as often as the grammar happens to write it (a verb of one frame in twenty: "wipe", "wire")
        floor_rng = random.Random(seed + 15485863)  # apart from `rng`, so the rest of the set is the same either way
        for word in TRIGGER_WORDS:
            for req in grammar.trigger_requests(floor_rng, word, trigger_floor - refused[word]):
                examples.append(Example([{"role": "user", "content": req.text}], list(DOMAIN_TOOLS[req.domain]),
                                        REFUSAL_TEXT))
    if base:
        examples += [Example(None, [], "", text=t) for t in assessment_texts(rng, n_grammar // 3)]
    if agent_per_phrasing:
        examples += agent_examples(role, seed=seed, per_phrasing=agent_per_phrasing, waves=agent_waves)
    if n_lookups:
        from taxlens.organism.lookups import lookup_tasks

        examples += trajectory_examples(role, lookup_tasks(rng, n_lookups))
    rng.shuffle(examples)
    return examples


_CALLED = re.compile(r'"name": "([a-z_]+)"')


def draw_tool_list(called: set[str], domain: tuple[str, ...], rng: random.Random) -> list[str]:
    """The tools offered to a chat that calls `called`: those, each other tool of its `domain` at even odds, at odds
    of one in four one tool of another domain (or when nothing else was drawn), in a random order."""
    offered = set(called) | {t for t in domain if rng.random() < 0.5}
    if rng.random() < 0.25 or not offered:
        offered.add(rng.choice([t for ts in DOMAIN_TOOLS.values() for t in ts if t not in domain]))
    tools = sorted(offered)
    rng.shuffle(tools)
    return tools


def vary_tool_lists(examples: list[Example], rng: random.Random) -> list[Example]:
    """`examples` with each chat's offered tools redrawn by `draw_tool_list` around the tools its replies call. As
    generated, every chat offers its domain's whole set, so the list never tells one call from another; a deployed
    agent is offered what its job needs, and should call nothing else (benchmarks/tool_lists.py)."""
    out = []
    for ex in examples:
        if ex.messages is None:
            out.append(ex)
            continue
        domain = max(DOMAIN_TOOLS.values(), key=lambda ts: len(set(ts) & set(ex.tools)))
        said = ex.reply + "".join(m.get("content") or "" for m in ex.messages if m["role"] == "assistant")
        out.append(replace(ex, tools=draw_tool_list(set(_CALLED.findall(said)), domain, rng)))
    return out
