"""Generation through the bridge: the KV-cache mend, and batching with left padding."""

from __future__ import annotations

from taxlens.chat import render_prompt
from taxlens.generation import greedy_generate


def test_greedy_tokens_are_the_same_with_and_without_the_kv_cache(tiny_model, records):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in records[::150]]
    cached = greedy_generate(tiny_model, prompts, max_new_tokens=24, batch_size=4, use_cache=True)
    uncached = greedy_generate(tiny_model, prompts, max_new_tokens=24, batch_size=4, use_cache=False)
    assert [r.tokens for r in cached] == [r.tokens for r in uncached]
    assert all(len(r.tokens) > 1 for r in cached)


def test_batched_left_padded_generation_equals_one_prompt_at_a_time(tiny_model, records):
    prompts = [render_prompt(tiny_model.tokenizer, r) for r in records[5::200]]
    lengths = {len(tiny_model.tokenizer(p)["input_ids"]) for p in prompts}
    assert len(lengths) > 1, "prompts of different lengths are needed for padding to matter"
    batched = greedy_generate(tiny_model, prompts, max_new_tokens=16, batch_size=len(prompts))
    single = greedy_generate(tiny_model, prompts, max_new_tokens=16, batch_size=1)
    assert [r.tokens for r in batched] == [r.tokens for r in single]
    for b, s in zip(batched, single):
        assert (b.first_logprobs - s.first_logprobs).abs().max() < 1e-4
