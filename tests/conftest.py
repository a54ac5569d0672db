"""Shared fixtures: a tiny random-weight Llama with the organism's tokenizer and chat template, built locally."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "toolcalls.jsonl"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker, and for the kernels and servers it starts: two workers with a thread each per core
    # share the CPU; two with two threads each spin against each other and run many times slower.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Files that take a minute or more on one worker, longest first (docs/benchmarks.md, `make test`). pytest-xdist hands
# each file whole to one worker, in collection order under `--no-loadscope-reorder`; with the long files first, the
# last file a worker picks up is a short one and neither worker waits minutes for the other at the end.
LONG_FILES = ("test_own_pair.py", "test_organism.py", "test_notebooks.py", "test_probes_analysis.py",
              "test_steer_pipeline.py", "test_agent_models.py", "test_training_precision.py", "test_leakage.py",
              "test_eval.py", "test_agent_sweep.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order is kept


@pytest.fixture(scope="session")
def records():
    from taxlens.contract import load_records

    return load_records(DATA)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, records) -> Path:
    """A 2-layer, d_model 64 random Llama saved as an HF checkpoint with a trained byte-level BPE tokenizer (GPT-2's
    pre-tokenizer, as most real models have)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from taxlens.organism.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = train_tokenizer([m["content"] for r in records for m in r.messages], vocab_size=600, isolate_marks=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from taxlens.models import load_model

    return load_model(str(tiny_model_dir), device="cpu")


def tiny_checkpoint(config_class, tokenizer_dir, out, **extra):
    """A 2-layer random checkpoint of another architecture with the tiny model's tokenizer; norm weights randomised
    (a fresh Gemma-style norm is the identity, which would hide where a write is normed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    cfg = config_class(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                       **extra)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(0.5 * torch.randn_like(param))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@contextmanager
def served_app(app, **config):
    """`app` under uvicorn on a free loopback port, in a thread; yields the port. On exit the server stops and its
    thread is joined, so no test after it sees the thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"uvicorn did not start on port {port}")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
