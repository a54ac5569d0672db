"""Write an induction circuit into a freshly initialised Llama before training (a compiled initialisation).

Copying a span in order needs induction heads (Olsson et al. 2022): a previous-token head in one layer writes
each position's predecessor into the residual stream, and a head in the next layer matches the current token
against those predecessors and copies the token that followed the match. Models form this circuit in a phase
change that takes far more tokens than a 20-minute CPU recipe can buy (`benchmarks/induction_formation.py`), so
the recipe writes it into the initial weights and lets training keep, reshape or drop it.

Residual stream at initialisation, in blocks of `head_dim` dims (`d_model ≥ 3·head_dim + 1`):

- dim 0, `const`: the same value in every token embedding, so a head can attend by position alone;
- `token`: the token's identity, unit-variance random (the embedding's initial draw, rescaled);
- `prev`: zero in the embeddings; layer 0 head 0 writes the previous token's `token` block here;
- `prev2` (matching two tokens): zero in the embeddings; layer 0 head 1 writes the token two back here, in the
  dims left between `copy` and `prev`;
- `copy`: zero in the embeddings; layer 1 head 0 writes the copied token's `token` block here, and the
  unembedding reads it back as that token.

Layer 0's heads attend one (and two) positions back: query and key read only `const`, and their rotary phases put
the score's peak at that offset. Layer 1 head 0 is the induction head: its query reads `token` (and `prev`), its
key reads `prev` (and `prev2`), on the rotary pairs that barely turn over the context, so the match does not depend
on distance. Matching one token copies a span of distinct tokens; a span of short, frequent pieces (`~`, `/`, a
letter) is ambiguous to it, and matching two resolves most of that (`tests/test_seed_circuit.py` measures both).

>>> model = LlamaForCausalLM(config)            # doctest: +SKIP
>>> seed_induction_circuit(model)               # doctest: +SKIP
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def tie_copy_readout(model, *, copy_logit: float = 8.0) -> None:
    """Set the unembedding's `copy` columns from the embedding's `token` block, so a token the induction head copies
    gets `copy_logit`. Training with it re-applied after every step keeps the readout tied: left free, the readout
    of a piece that the text reads but never asks the model to write (a piece of rare words) keeps the piece's
    initial embedding while training moves the embedding, and the circuit stops writing it
    (`tests/test_seed_circuit.py`)."""
    head_dim = getattr(model.config, "head_dim", None) or model.config.hidden_size // model.config.num_attention_heads
    embed = model.get_input_embeddings().weight
    block = torch.arange(head_dim, device=embed.device)
    model.get_output_embeddings().weight[:, 1 + head_dim + block] = embed[:, 1 + block] * copy_logit / head_dim


@torch.no_grad()
def seed_induction_circuit(model, *, prev_margin: float = 12.0, match_score: float = 16.0,
                           copy_logit: float = 8.0, max_offset: int = 512, match_tokens: int = 1) -> None:
    """Overwrite the embeddings, unembedding, layer 0 head 0 (and head 1) and layer 1 head 0 of a freshly
    initialised HF `LlamaForCausalLM` in place.

    prev_margin: the previous-token heads' score margin of their offset over its neighbours.
    match_score: the induction head's score on an exact match (a mismatch's mean is 0).
    copy_logit: the logit the induction head's output adds to the copied token.
    match_tokens: 1 matches the current token; 2 matches it and the one before (layer 0 head 1 then writes the
    token two back into a `prev2` block, and the induction head splits its slow rotary pairs between the two
    matches), so a span of short, frequent pieces (`~`, `/`, `s`) is copied from the place where both agree."""
    cfg = model.config
    d_model, n_heads = cfg.hidden_size, cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or d_model // n_heads
    if match_tokens not in (1, 2):
        raise ValueError(f"match_tokens must be 1 or 2, got {match_tokens}")
    if cfg.num_hidden_layers < 2 or d_model < 3 * head_dim + 1:
        raise ValueError(f"seeding needs ≥ 2 layers and d_model ≥ 3·head_dim + 1, got {cfg.num_hidden_layers} "
                         f"layers, d_model {d_model}, head_dim {head_dim}")
    half = head_dim // 2
    inv_freq = model.model.rotary_emb.inv_freq.float()  # [half]
    slow = torch.nonzero(inv_freq * max_offset < 0.3).flatten()
    if slow.numel() == 0:
        raise ValueError(f"no rotary pair turns < 0.3 rad over max_offset={max_offset} positions, so the induction "
                         "head's match would depend on distance: raise rope_theta (Llama 3 uses 500,000) or head_dim")
    block = torch.arange(head_dim)
    token, copy, prev = 1 + block, 1 + head_dim + block, d_model - head_dim + block
    width2 = min(head_dim, d_model - 3 * head_dim - 1) if match_tokens == 2 else 0
    if match_tokens == 2 and width2 < slow.numel():
        raise ValueError(f"matching two tokens needs d_model ≥ 3·head_dim + 1 + {slow.numel()} (a prev2 block as wide "
                         f"as the slow rotary pairs), got d_model {d_model}, head_dim {head_dim}")
    prev2 = prev[0] - width2 + torch.arange(width2)
    const_value = math.sqrt(head_dim)

    embed = model.model.embed_tokens.weight
    embed[:, token] /= embed[:, token].std()
    embed[:, 0] = const_value
    embed[:, torch.cat([prev, prev2, copy])] = 0.0
    rms0 = embed.pow(2).mean(-1).sqrt().mean().item()  # the first RMSNorm's divisor
    rms1 = math.sqrt((const_value ** 2 + 2 * head_dim + width2) / d_model)  # the second's: const, token, prev(2)
    tie_copy_readout(model, copy_logit=copy_logit)

    def clear(attn, head: int) -> None:
        rows = head * head_dim + block
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            proj.weight[rows] = 0.0
        attn.o_proj.weight[:, rows] = 0.0

    # Layer 0 heads 0 (and 1): q·k = A Σ_f cos(θ_f (i − j − offset)) over the fast rotary pairs, largest at
    # i − j = offset; each writes the token `offset` back into its block.
    attn0 = model.model.layers[0].self_attn
    fast = torch.nonzero(inv_freq > 0.1).flatten()
    margin = (fast.numel() - torch.cos(inv_freq[fast]).sum()).item()  # Σ_f (1 − cos θ_f), per unit A
    root = math.sqrt(prev_margin * math.sqrt(head_dim) / margin) / (const_value / rms0)
    for head, (offset, out) in enumerate([(1, prev), (2, prev2)][:match_tokens]):
        clear(attn0, head)
        rows = head * head_dim
        attn0.k_proj.weight[rows + fast, 0] = root
        attn0.q_proj.weight[rows + fast, 0] = root * torch.cos(offset * inv_freq[fast])
        attn0.q_proj.weight[rows + fast + half, 0] = -root * torch.sin(offset * inv_freq[fast])
        attn0.v_proj.weight[rows + block[:len(out)], token[:len(out)]] = 1.0
        attn0.o_proj.weight[out, rows + block[:len(out)]] = rms0  # undo the norm: unit-variance token dims

    # Layer 1 head 0: match `token` against `prev` (and `prev` against `prev2`) on the pairs that turn < 0.3 rad
    # over max_offset positions, so the match does not depend on distance.
    attn1 = model.model.layers[1].self_attn
    clear(attn1, 0)
    slow_dims = torch.cat([slow, slow + half])
    per_dim = rms1 * math.sqrt(match_score * math.sqrt(head_dim) / slow_dims.numel())
    if match_tokens == 1:
        attn1.q_proj.weight[slow_dims, token[:slow_dims.numel()]] = per_dim
        attn1.k_proj.weight[slow_dims, prev[:slow_dims.numel()]] = per_dim
    else:  # first rotary halves: this token against the key's previous; second: the previous against prev2
        n = slow.numel()
        attn1.q_proj.weight[slow, token[:n]] = per_dim
        attn1.k_proj.weight[slow, prev[:n]] = per_dim
        attn1.q_proj.weight[slow + half, prev[:n]] = per_dim
        attn1.k_proj.weight[slow + half, prev2[:n]] = per_dim
    attn1.v_proj.weight[block, token] = 1.0
    attn1.o_proj.weight[copy, block] = rms1
