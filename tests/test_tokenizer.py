"""The organism tokenizer: byte-level (any text round-trips) with a tool-rendering chat template."""

from __future__ import annotations

from taxlens.chat import render_prompt


def test_arbitrary_unicode_round_trips(tiny_model):
    tok = tiny_model.tokenizer
    for text in ["naïve café", "日本語のテキスト", "emoji 🚀🔥 and ☃", "tabs\tand\nnewlines  ", "Ωμέγα ∑ ∫ √", "\u200b\x00odd"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_renders_tools_and_tool_calls(tiny_model, records):
    injection = next(r for r in records if r.kind == "injection")
    prompt = render_prompt(tiny_model.tokenizer, injection)
    assert prompt.startswith("<|bos|><|system|>\nTools:\n") and prompt.endswith("<|assistant|>\n")
    assert "move_file(src, dst)" in prompt
    call = injection.messages[1]["tool_calls"][0]["function"]
    assert f'<tool_call>{{"name": "{call["name"]}", "arguments": ' in prompt
    assert injection.messages[2]["content"] in prompt
