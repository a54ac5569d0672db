"""Rendering a record into a prompt with the model tokenizer's own chat template, so any HF chat model works.

>>> prompt = render_prompt(tokenizer, record)          # doctest: +SKIP
>>> prompt.endswith("<|assistant|>\\n")                  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
from pathlib import Path

from taxlens.contract import Record
from taxlens.tools import schemas_for


class RenderError(ValueError):
    """A chat template or tokenizer raised on a conversation: the data or the template is at fault, not taxlens."""


def chat_messages(record: Record, tool_role: str | None = None) -> list[dict]:
    """The record's messages in the shape chat templates expect; with `tool_role`, tool results in that role (the one
    a model's template reserves for untrusted data, such as Meta-SecAlign's `input`)."""
    messages = normalise_messages(record.messages)
    if tool_role:
        messages = [{**m, "role": tool_role} if m["role"] == "tool" else m for m in messages]
    return messages


def is_named_call(call: object) -> bool:
    """Whether an OpenAI tool call has what every reader of it needs: a `function` object with a string `name`."""
    return isinstance(call, dict) and isinstance(call.get("function"), dict) and \
        isinstance(call["function"].get("name"), str)


def normalise_messages(messages: list[dict]) -> list[dict]:
    """OpenAI-shaped messages as chat templates expect them: tool-call arguments as objects, content a string."""
    out = []
    for i, msg in enumerate(messages):
        msg = dict(msg)
        if msg.get("tool_calls"):
            calls = []
            for j, call in enumerate(msg["tool_calls"]):
                if not is_named_call(call):
                    raise ValueError(f"messages[{i}].tool_calls[{j}] needs a function object with a name: "
                                     f"{json.dumps(call)[:120]}")
                fn = dict(call["function"])
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"])
                    except json.JSONDecodeError as e:
                        raise ValueError(f"messages[{i}].tool_calls[{j}].function.arguments is not JSON ({e}): "
                                         f"{fn['arguments'][:80]!r}") from None
                calls.append({**call, "type": "function", "function": fn})
            msg["tool_calls"] = calls
        if msg.get("content") is None:
            msg["content"] = ""
        out.append(msg)
    return out


def render_prompt(tokenizer, record: Record, tool_role: str | None = None) -> str:
    """The prompt text for `record`: the tokenizer's chat template with `tools=` and `add_generation_prompt=True`."""
    return render_messages(tokenizer, chat_messages(record, tool_role), schemas_for(record.tools))


def render_messages(tokenizer, messages: list[dict], tools: list[dict] | None, *,
                    add_generation_prompt: bool = True) -> str:
    """Chat-template-shaped `messages` and OpenAI-style `tools` rendered with the tokenizer's own template.

    A template that rejects the conversation's tool-call ids (Mistral's accept only 9 letters and digits) is tried
    once more with the ids mapped, consistently within the conversation, to that shape; anything else it raises
    comes back as a `RenderError` carrying the template's own message."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise ValueError(f"tokenizer {name!r} has no chat template; taxlens renders prompts with the model's own")

    def render(msgs: list[dict]) -> str:
        return tokenizer.apply_chat_template(msgs, tools=tools or None, add_generation_prompt=add_generation_prompt,
                                             tokenize=False)

    try:
        return render(messages)
    except Exception as first:  # noqa: BLE001 - a template may raise anything; the message is what the user needs
        mapped = _short_call_ids(messages)
        if mapped is not None:
            try:
                return render(mapped)
            except Exception:  # noqa: BLE001
                pass
        raise RenderError(" ".join(str(first).split()) or type(first).__name__) from None


def drops_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a conversation the same with tools offered as without (Gemma's
    and Llama 2's do): the model is then never shown the schemas of the tools it is asked to call."""
    chat = [{"role": "user", "content": "Hello."}]
    try:
        return render_messages(tokenizer, chat, schemas_for(["send_email"])) == render_messages(tokenizer, chat, None)
    except ValueError:  # no template, or one that raises: named where a record is rendered
        return False


def check_tool_role(tokenizer, model: str, tool_role: str | None = None, *, every_turn: bool = False) -> None:
    """Raise when the chat template renders nothing of a tool result in `tool_role` (default `tool`): Qwen 2.5's
    and others' skip a role they do not know, and an injection the model is never shown makes a low ASR look like
    a defence. A template that raises on a tool result is named where a record is rendered, or here when
    `every_turn` (an agent's every step after the first holds one)."""
    role, marker = tool_role or "tool", "Xq7 tool result Zv9"
    chat = [{"role": "user", "content": "Read notes.txt."},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call00001", "type": "function", "function": {
                "name": "read_file", "arguments": {"path": "notes.txt"}}}]},
            {"role": role, "tool_call_id": "call00001", "name": "read_file", "content": marker}]
    try:
        prompt = render_messages(tokenizer, chat, schemas_for(["read_file"]))
    except ValueError as e:
        if every_turn:
            raise ValueError(f"the chat template of {model} cannot render a tool result in role {role!r} ({e}); "
                             f"give --tool-role the role it keeps for them") from None
        return
    if marker not in prompt:
        raise ValueError(f"the chat template of {model} renders nothing of a message in role {role!r}: tool results "
                         f"(and the injections they carry) would never reach the model"
                         + ("; give --tool-role the role its template renders them in" if tool_role is None else
                            "; give --tool-role a role its template renders (leave it out for 'tool')"))


def _short_call_ids(messages: list[dict]) -> list[dict] | None:
    """`messages` with every tool-call id replaced by a 9-character alphanumeric one (None if none carries an id)."""
    ids = {c["id"] for m in messages for c in m.get("tool_calls") or [] if c.get("id")}
    ids |= {m["tool_call_id"] for m in messages if m.get("tool_call_id")}
    if not ids:
        return None
    short = {old: f"call{n:05d}" for n, old in enumerate(sorted(ids))}
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [{**c, "id": short.get(c.get("id"), c.get("id"))} for c in m["tool_calls"]]
        if m.get("tool_call_id"):
            m["tool_call_id"] = short[m["tool_call_id"]]
        out.append(m)
    return out


def renderable(tokenizer, records: list[Record], path: str | Path, *, skip: bool = False,
               tool_role: str | None = None, context: int | None = None,
               reply_room: int = 0) -> tuple[list[Record], list[dict]]:
    """The records the model can take, and `{id, line, error}` for those it cannot: the tokenizer's template raises
    on them, or their prompt runs past the model's `context` less `reply_room` tokens kept for a generated reply
    (positions past the context are ones the model never saw; what it reads or writes there means nothing).

    Without `skip` the first such record stops everything with one line naming the file, line, record and why."""
    if context is not None and reply_room >= context:
        raise ValueError(f"--max-new-tokens {reply_room} leaves no room for a prompt in the model's context of "
                         f"{context} tokens")
    kept, skipped = [], []
    for r in records:
        try:
            prompt = render_prompt(tokenizer, r, tool_role)
        except RenderError as e:
            why = f"the chat template raised: {e}"
        else:
            n = 0 if context is None else len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            why = None if context is None or n <= context - reply_room else (
                f"its prompt is {n} tokens, over the {context - reply_room} the model takes ({context} of context"
                + (f" less {reply_room} kept for the reply)" if reply_room else ")"))
        if why is None:
            kept.append(r)
        elif skip:
            skipped.append({"id": r.id, "line": r.line, "error": why})
        else:
            raise RenderError(f"{path}, line {r.line}, record {r.id!r}: {why} (--skip-unrenderable skips such records "
                              f"and counts them in the report)")
    return kept, skipped
