"""The compiled induction circuit: a freshly initialised Llama, seeded, copies repeated spans before any training."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from taxlens.organism.fit_check import copy_accuracy
from taxlens.organism.seed_circuit import seed_induction_circuit


def tiny_llama(heads: int = 4, d_model: int = 128, layers: int = 2, rope_theta: float = 500000.0,
               seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=300, hidden_size=d_model, intermediate_size=256, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=256,
                         rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
                         attn_implementation="eager")
    return LlamaForCausalLM(config).eval()


def repeated(n: int = 16, span: int = 20) -> torch.Tensor:
    """[n, 1 + 2*span]: token 0 (in BOS's place), then span distinct random tokens, then the same tokens again."""
    generator = torch.Generator().manual_seed(1)
    first = torch.stack([torch.randperm(299, generator=generator)[:span] + 1 for _ in range(n)])
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), first, first], dim=1)


@torch.no_grad()
def test_seeded_model_attends_back_one_token_and_copies_the_second_copy():
    tokens, span = repeated(), 20
    model = tiny_llama()
    unseeded = model(input_ids=tokens).logits
    seed_induction_circuit(model)
    out = model(input_ids=tokens, output_attentions=True)
    query = torch.arange(1, 2 * span + 1)
    assert out.attentions[0][:, 0, query, query - 1].mean() > 0.9  # layer 0 head 0: the previous token
    second = torch.arange(span + 2, 2 * span + 1)
    assert out.attentions[1][:, 0, second - 1, second - span].mean() > 0.7  # layer 1 head 0: after the match
    assert copy_accuracy(out.logits, tokens, span) > 0.8
    assert copy_accuracy(unseeded, tokens, span) < 0.1


def test_seeding_rejects_a_model_it_cannot_seed():
    with pytest.raises(ValueError, match="d_model ≥ 3·head_dim"):
        seed_induction_circuit(tiny_llama(heads=2, d_model=128))
    with pytest.raises(ValueError, match="≥ 2 layers"):
        seed_induction_circuit(tiny_llama(layers=1))
    with pytest.raises(ValueError, match="raise rope_theta"):
        seed_induction_circuit(tiny_llama(rope_theta=100.0))


@torch.no_grad()
def test_matching_two_tokens_copies_spans_of_frequent_pieces_that_one_token_cannot():
    generator = torch.Generator().manual_seed(1)
    first = torch.randint(1, 13, (32, 20), generator=generator)  # 12 distinct tokens: every one repeats in the span
    tokens = torch.cat([torch.zeros(32, 1, dtype=torch.long), first, first], dim=1)
    accuracy = {}
    for match_tokens in (1, 2):
        model = tiny_llama(d_model=256)
        seed_induction_circuit(model, match_tokens=match_tokens)
        accuracy[match_tokens] = copy_accuracy(model(input_ids=tokens).logits, tokens, 20)
    assert accuracy[2] > 0.8 and accuracy[1] < 0.6, accuracy
    narrow = LlamaConfig(vocab_size=300, hidden_size=200, head_dim=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    with pytest.raises(ValueError, match="matching two tokens needs"):  # 7 dims left for prev2, 13 slow pairs
        seed_induction_circuit(LlamaForCausalLM(narrow), match_tokens=2)


def test_a_tied_copy_readout_keeps_copying_tokens_that_training_reads_but_never_writes():
    """Trained on spans of all 299 tokens with the loss on tokens 1–149 only (150–299 are read, never written, as
    the pieces of rare words are), the seeded circuit copies spans of tokens 150–299 better when the copy readout is
    re-tied after every step; left free, the readout keeps their initial embeddings while training moves them. How
    much a free readout loses varies with the initialisation and with the CPU's kernels (one initialisation: 0.72
    against 0.98 on two threads of an AMX CPU, 0.95 against 0.88 on two AVX2 cores), so the claim is on the mean of
    three initialisations (on two AVX2 cores 0.75 against 0.87)."""
    from taxlens.organism.seed_circuit import tie_copy_readout

    def spans(n: int, generator: torch.Generator, low: int = 1, width: int = 299) -> torch.Tensor:
        first = torch.stack([torch.randperm(width, generator=generator)[:20] + low for _ in range(n)])
        return torch.cat([torch.zeros(n, 1, dtype=torch.long), first, first], dim=1)

    unseen, accuracy = spans(32, torch.Generator().manual_seed(2), low=150, width=150), {False: [], True: []}
    for seed in range(3):
        for tied in (False, True):
            model = tiny_llama(seed=seed)
            seed_induction_circuit(model)
            opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
            model.train()
            batches = torch.Generator().manual_seed(100 + seed)
            for _ in range(150):
                tokens = spans(16, batches)
                model(input_ids=tokens, labels=tokens.masked_fill(tokens >= 150, -100)).loss.backward()
                opt.step()
                opt.zero_grad()
                if tied:
                    tie_copy_readout(model)
            with torch.no_grad():
                accuracy[tied].append(copy_accuracy(model.eval()(input_ids=unseen).logits, unseen, 20))
    mean = {tied: sum(values) / len(values) for tied, values in accuracy.items()}
    assert mean[True] > 0.8 and mean[True] > mean[False], accuracy
