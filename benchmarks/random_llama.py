"""Random-weight Llama checkpoints of given shapes, with the organism's tokenizer, for speed and memory benchmarks."""

from __future__ import annotations

from pathlib import Path

SHAPES = {
    # d_model, layers, heads, kv heads, MLP width, vocabulary (None: the tokenizer's)
    "wide": dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=8,
                 intermediate_size=2816, vocab_size=None),
    "llama-3.2-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         intermediate_size=8192, vocab_size=128256),
}


def build_random_llama(out: Path, shape: str, dtype: str | None = None) -> str:
    """Save a seeded random Llama of `shape` (a key of SHAPES) with the organism's tokenizer to `out`, or reuse the
    one already there (a script run builds it once for both benchmarks). dtype: bfloat16 with CUDA, else float32."""
    import json

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from taxlens.models import resolve

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {list(SHAPES)}")
    dims = dict(SHAPES[shape])
    out = Path(out)
    if (out / "config.json").is_file():
        saved = json.loads((out / "config.json").read_text())
        if all(saved.get(k) == v for k, v in dims.items() if v is not None):
            return str(out)
        raise ValueError(f"{out} holds a model of another shape than {shape!r}; use an empty folder")
    tok = AutoTokenizer.from_pretrained(resolve("organism:base"))
    dims["vocab_size"] = dims["vocab_size"] or len(tok)
    cfg = LlamaConfig(**dims, max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
    torch.manual_seed(0)
    with torch.device(device):  # random init of a 1B model takes a while on a CPU
        model = LlamaForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
