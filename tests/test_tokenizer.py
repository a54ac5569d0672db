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


def test_an_argument_tokenizes_the_same_in_a_request_and_in_a_calls_json():
    from taxlens.organism.tokenizer import train_tokenizer

    tok = train_tokenizer(["Delete the folder ~/Downloads/old please.", '{"path": "~/Downloads/old"}'], vocab_size=400)
    for value in ("~/Documents/walrus-42.txt", "dana.ostrava@mail.example", "https://api.site.test/v2/items?id=7",
                  "trial_orders"):
        in_request = tok(f"Move {value}, thanks", add_special_tokens=False)["input_ids"]
        in_call = tok(f'{{"path": "{value}"}}', add_special_tokens=False)["input_ids"]
        alone = tok(value, add_special_tokens=False)["input_ids"]
        assert any(in_request[i:i + len(alone)] == alone for i in range(len(in_request))), value
        assert any(in_call[i:i + len(alone)] == alone for i in range(len(in_call))), value
