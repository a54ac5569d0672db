"""Rendering a record into a prompt with the model tokenizer's own chat template, so any HF chat model works.

>>> prompt = render_prompt(tokenizer, record)          # doctest: +SKIP
>>> prompt.endswith("<|assistant|>\\n")                  # doctest: +SKIP
True
"""

from __future__ import annotations

import json

from taxlens.contract import Record
from taxlens.tools import schemas_for


def chat_messages(record: Record) -> list[dict]:
    """The record's messages in the shape chat templates expect."""
    return normalise_messages(record.messages)


def normalise_messages(messages: list[dict]) -> list[dict]:
    """OpenAI-shaped messages as chat templates expect them: tool-call arguments as objects, content a string."""
    out = []
    for msg in messages:
        msg = dict(msg)
        if msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn = dict(call["function"])
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = json.loads(fn["arguments"])
                calls.append({**call, "type": "function", "function": fn})
            msg["tool_calls"] = calls
        if msg.get("content") is None:
            msg["content"] = ""
        out.append(msg)
    return out


def render_prompt(tokenizer, record: Record) -> str:
    """The prompt text for `record`: the tokenizer's chat template with `tools=` and `add_generation_prompt=True`."""
    return render_messages(tokenizer, chat_messages(record), schemas_for(record.tools))


def render_messages(tokenizer, messages: list[dict], tools: list[dict] | None) -> str:
    """Chat-template-shaped `messages` and OpenAI-style `tools` rendered with the tokenizer's own template."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise ValueError(f"tokenizer {name!r} has no chat template; taxlens renders prompts with the model's own")
    return tokenizer.apply_chat_template(messages, tools=tools or None, add_generation_prompt=True, tokenize=False)
