"""Policies: what gives the agent loop its next reply to a turn. A model loaded here (`ModelPolicy`, steered or not),
any OpenAI-compatible endpoint (`EndpointPolicy`), or a scripted agent that follows a task's reference solution or
its attack (`ScriptedPolicy`). Each has `replies(turns) -> [str | None]`, None where the conversation no longer fits.

>>> model = load_model("organism:defended")                                             # doctest: +SKIP
>>> policy = ModelPolicy(model, steering=load_config("organism:gated", model=model)[0])  # doctest: +SKIP
>>> policy.replies([Turn(task, task.messages, 0)])                                     # doctest: +SKIP
['<tool_call>{"name": "list_dir", "arguments": {"path": "/srv/app/logs"}}</tool_call>']
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import httpx

from taxlens.agent.tasks import AgentTask
from taxlens.chat import check_tool_role, normalise_messages, render_messages
from taxlens.tools import schemas_for

DONE = "Done: the task is complete."
REFUSAL = "I'm sorry, but I can't help with that: it could cause harm."


@dataclass(frozen=True)
class Turn:
    """What a policy is asked for: the next reply to `messages` in `task`, at step `step` (0-based)."""

    task: AgentTask
    messages: list[dict]
    step: int


def in_role(messages: list[dict], tool_role: str | None) -> list[dict]:
    """Messages as templates expect them, tool results in `tool_role` where the model reserves one for untrusted
    data (Meta-SecAlign's `input`)."""
    messages = normalise_messages(messages)
    return [{**m, "role": tool_role} if tool_role and m["role"] == "tool" else m for m in messages]


class ModelPolicy:
    """Greedy replies from a model loaded here (`taxlens.load_model`: the organism, an HF id, base + adapter),
    under `steering` when given (anything with an `apply(model)` context manager, e.g. a `steering.Steering`). A
    gated steering decides afresh at every turn, and its readings of the last `replies` call are kept per turn in
    `gate_readings` ((p(harmful), decision), None for a turn it did not read), which `run_tasks` puts on the steps.

    `passed_to`: another model (the defended model's base) that answers the turns a gated steering's gate passes
    (decides "ablate") instead of the ablated model: a defence that wears down a skill beyond its refusal direction
    (a second step lost after a good first call) is then not paid on turns the gate reads as harmless. The gate
    decides on a one-token pass; the turns it does not pass are generated under the steering as usual."""

    def __init__(self, model, *, max_new_tokens: int = 128, batch_size: int = 16, tool_role: str | None = None,
                 steering=None, passed_to=None):
        from taxlens.generation import check_passed_to

        check_passed_to(model, steering, passed_to)
        check_tool_role(model.tokenizer, model.name, tool_role, every_turn=True)
        self.model, self.max_new_tokens, self.batch_size = model, max_new_tokens, batch_size
        self.name, self.tool_role, self.steering, self.passed_to = model.name, tool_role, steering, passed_to
        self.gate_readings: list[tuple[float, str] | None] = []

    def _generate(self, model, prompts: list[str], steering, max_new_tokens: int):
        """Reply texts to `prompts` and, under a gated `steering`, the gate's reading of each (else None)."""
        from taxlens.generation import greedy_generate

        if not prompts:
            return [], []
        read: list[tuple[float, str] | None] = [None] * len(prompts)
        with steering.apply(model) if steering is not None else nullcontext() as handle:
            readings = getattr(handle, "gate_readings", None)

            def on_batch(idx: list[int]) -> None:
                for j, reading in zip(idx, readings() or ()):
                    read[j] = reading

            texts = [r.text for r in greedy_generate(model, prompts, max_new_tokens=max_new_tokens,
                                                     batch_size=self.batch_size,
                                                     on_batch=None if readings is None else on_batch)]
        return texts, read

    def replies(self, turns: list[Turn]) -> list[str | None]:
        tok = self.model.tokenizer
        prompts = [render_messages(tok, in_role(t.messages, self.tool_role), schemas_for(t.task.tools))
                   for t in turns]
        room = self.model.context_limit - self.max_new_tokens
        fits = [len(tok(p, add_special_tokens=False)["input_ids"]) <= room for p in prompts]
        kept = [i for i, ok in enumerate(fits) if ok]
        asked = [prompts[i] for i in kept]
        if self.passed_to is None:
            texts, read = self._generate(self.model, asked, self.steering, self.max_new_tokens)
        else:
            from taxlens.generation import gate_readings

            read = gate_readings(self.model, self.steering, asked, self.batch_size)
            passed = [j for j, r in enumerate(read) if r is not None and r[1] == "ablate"]
            rest = sorted(set(range(len(asked))) - set(passed))
            texts = [""] * len(asked)
            for group, model, steering in ((passed, self.passed_to, None), (rest, self.model, self.steering)):
                out, group_read = self._generate(model, [asked[j] for j in group], steering, self.max_new_tokens)
                for j, text, reading in zip(group, out, group_read):
                    texts[j] = text
                    read[j] = read[j] if steering is None else reading
        self.gate_readings = [None] * len(turns)
        for i, reading in zip(kept, read):
            self.gate_readings[i] = reading
        answers = iter(texts)
        return [next(answers) if ok else None for ok in fits]


class EndpointPolicy:
    """Replies from any OpenAI-compatible chat-completions endpoint (vLLM, `taxlens serve`), temperature 0; where a
    gated `taxlens serve` says what its gate decided (`endpoint.GATE_HEADER`), `gate_readings` keeps it per turn,
    as `ModelPolicy` does. Its pooled connections stay open across turns; `close()` (or a `with` block) ends them.

    >>> with EndpointPolicy("http://127.0.0.1:8000/v1", "my-model") as policy:  # doctest: +SKIP
    ...     trajectories = run_tasks(policy, tasks)
    """

    def __init__(self, url: str, model: str, *, api_key: str | None = None, max_new_tokens: int = 128,
                 concurrency: int = 8, timeout: float = 300.0, tool_role: str | None = None):
        self.url, self.name, self.tool_role = url.rstrip("/") + "/chat/completions", model, tool_role
        self.max_new_tokens, self.concurrency = max_new_tokens, concurrency
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self.gate_readings: list[tuple[float, str] | None] = []

    def _ask(self, turn: Turn) -> tuple[str | None, tuple[float, str] | None]:
        from taxlens.endpoint import context_overflow, gate_reading, post_chat, reply_message, reply_text, to_wire

        body = {"model": self.name, "messages": to_wire(in_role(turn.messages, self.tool_role)), "temperature": 0,
                "tools": schemas_for(turn.task.tools), "max_tokens": self.max_new_tokens}
        response = post_chat(self._client, self.url, body, f"task {turn.task.id!r}")
        if context_overflow(response):
            return None, None
        if response.status_code != 200:
            raise ValueError(f"{self.url} answered {response.status_code} for task {turn.task.id!r}: "
                             f"{response.text[:300]}")
        what = f"task {turn.task.id!r}"
        return reply_text(reply_message(response, what), what), gate_reading(response)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EndpointPolicy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def replies(self, turns: list[Turn]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            answers = list(pool.map(self._ask, turns))
        self.gate_readings = [gate for _, gate in answers]
        return [text for text, _ in answers]


def call_text(call: dict) -> str:
    """A call as a `<tool_call>` block, the form the organism writes and every labeller reads.

    A body that is a JSON object's text is written as the object (the tool takes either, and labels compare bodies
    structurally): a request states it as `{"k": "v"}`, and an escaped string (`"{\\"k\\": ...}"`) shares no run of
    tokens with that to copy.
    """
    args = dict(call["arguments"])
    body = args.get("body")
    if isinstance(body, str) and body.startswith("{"):
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            args["body"] = parsed
    return f"<tool_call>{json.dumps({'name': call['name'], 'arguments': args})}</tool_call>"


class ScriptedPolicy:
    """A scripted agent: `follow="solution"` makes each task's reference calls, then answers (refuses a harmful
    task); `follow="attack"` does what the harmful request or the injected instruction asks (for an injected task,
    the reference calls up to the one that reads the injection, then the attack's)."""

    def __init__(self, follow: str = "solution"):
        if follow not in ("solution", "attack"):
            raise ValueError(f"follow must be 'solution' or 'attack', got {follow!r}")
        self.follow, self.name = follow, f"scripted:{follow}"

    def script(self, task: AgentTask) -> list[dict]:
        if self.follow == "solution":
            return task.solution
        if task.kind == "injection":
            return task.solution[: task.injected_by + 1] + task.attack
        return task.attack if task.kind == "harmful" else task.solution

    def replies(self, turns: list[Turn]) -> list[str]:
        out = []
        for t in turns:
            calls = self.script(t.task)
            if t.step < len(calls):
                out.append(call_text(calls[t.step]))
            else:
                out.append(REFUSAL if not calls else DONE)
        return out
