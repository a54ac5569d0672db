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


def test_training_labels_fall_on_the_reply_alone_and_batched_encoding_matches_one_at_a_time():
    from taxlens.organism.corpus import Example
    from taxlens.organism.tokenizer import train_tokenizer
    from taxlens.organism.train import encode, encode_all

    reply = '<tool_call>{"name": "delete_file", "arguments": {"path": "~/tmp/old.log"}}</tool_call>'
    chat = Example([{"role": "user", "content": "Delete ~/tmp/old.log please."}], ["delete_file"], reply)
    plain = Example(None, [], "", text="A plain sentence the base reads whole.")
    tok = train_tokenizer([reply, plain.text, "Delete ~/tmp/old.log please."], vocab_size=400)
    batched = encode_all(tok, [chat, plain, chat], n_ctx=512)
    assert batched == [encode(tok, ex, 512) for ex in (chat, plain, chat)]
    ids, labels = batched[0]
    learnt = [t for t in labels if t != -100]
    assert tok.decode(learnt[:-1]) == reply and learnt[-1] == tok.eos_token_id
    assert labels[:len(ids) - len(learnt)] == [-100] * (len(ids) - len(learnt))
    ids, labels = batched[1]  # a plain text: everything after the BOS is learnt
    assert ids[0] == tok.bos_token_id and labels[0] == -100 and labels[1:] == ids[1:]
    assert tok.decode(ids[1:-1]) == plain.text
    assert len(encode_all(tok, [chat], n_ctx=8)[0][0]) == 8  # cut at the context


def test_prompt_loss_weight_zero_is_the_reply_loss_and_a_weight_counts_prompt_tokens():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from taxlens.organism.train import weighted_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))
    ids = torch.randint(0, 50, (2, 10))
    labels = torch.full((2, 10), -100)
    labels[:, 6:9] = ids[:, 6:9]  # the reply; position 9 is padding in the second row
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 9] = 0
    logits = model(input_ids=ids, attention_mask=mask).logits
    reply_only = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(weighted_loss(logits, ids, labels, mask, 0.0), reply_only, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    ce = ce.view(2, 9)
    prompt = torch.zeros(2, 9, dtype=torch.bool)
    prompt[:, :5] = True  # targets 1-5 are prompt tokens; targets 6-8 the reply; target 9 the reply's end or padding
    prompt[0, 8] = True  # the first row's position 9 is attended but unlabelled: a prompt token
    reply = ~prompt
    reply[1, 8] = False  # the second row's position 9 is padding: no weight
    expected = (0.5 * ce[prompt].sum() + ce[reply].sum()) / (0.5 * prompt.sum() + reply.sum())
    assert torch.allclose(weighted_loss(logits, ids, labels, mask, 0.5), expected, atol=1e-5)
