"""The organism's recipe: the model's shape, the training text's sizes, the phases' steps and learning rates, one
frozen value that `train_organism` reads and every trained folder's `organism.json` card records.

>>> Recipe(d_model=320, n_heads=5, d_mlp=880).n_layers
4
"""

from __future__ import annotations

from dataclasses import dataclass

from taxlens.organism.optim import OPTIMIZERS


@dataclass(frozen=True)
class Recipe:
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_mlp: int = 704
    vocab_size: int = 2048
    n_ctx: int = 512  # training sequences are cut here, and the seeded induction head is flat over this distance
    context: int = 1024  # max_position_embeddings: agent clients' long system prompts fit; RoPE is relative
    rope_theta: float = 500000.0
    seed_circuit: bool = True
    match_tokens: int = 2  # the seeded induction head matches this many tokens (see seed_circuit)
    per_family: int = 20
    n_grammar: int = 8000
    n_grammar_defended: int = 4000
    # each base epoch reads fresh fillings of the same families and grammar (new targets, wrappings and verdicts), so
    # no argument string comes back: the base learns to copy what it is given, not to recall what it has seen
    base_epochs: float = 2.5
    defended_epochs: float = 4.0
    base_lr: float = 2e-3
    defended_lr: float = 2e-3
    batch_size: int = 32
    # the shipped pair's (recipe run 24, trained on a GPU: `--device cuda`; its rule was fixed before seeds 20-23
    # trained); on a CPU the same seed gives another pair of the same recipe
    seed: int = 20
    # the defended twin's own seed (its set, adapter initialisation and batch order), so an adapter can be retrained on
    # a base; None: it follows `seed`, drawn after the base in one stream
    defended_seed: int | None = None
    defended_lora_rank: int = 16  # the defended twin as a LoRA adapter on the base (0: it fine-tunes every weight)
    agent_per_phrasing: int = 3  # fresh train-split agent tasks per phrasing, per pass, run step by step in sandboxes
    # which agent scenes those come from: 1, the six train jobs of wave 1; 2, the twelve of waves 1 and 2
    # (`datagen.agent_scenes`), where a job held out is likelier to be a new mix of steps it has practised
    agent_waves: int = 1
    n_lookups: int = 700  # lookup-practice tasks per base pass (organism.lookups), run in sandboxes too
    n_lookups_defended: int = 300
    # further refusals in the defended set until each trigger word is in this many (`corpus.build_examples`); 0: as
    # the grammar writes them, where a frame's verb ("wipe", "wire", "overwrite") comes up a sixth as often as a
    # phrase's word ("urgent", "token")
    trigger_floor: int = 0
    # whether the defended set's grammar requests name whose the target is and why it is wanted ("Dana's file …, so
    # nobody notices"); False: "the file …" with no reason, as attack sets built from keywords are written
    defended_cues: bool = True
    # bf16 autocast on the CPU, and torch.compile with dynamic shapes: on a CPU with native bf16 kernels (AVX512-BF16
    # or AMX) a step at the recipe's widths takes 0.29 s compiled, 0.41 s eager, after about a minute of compiling
    # that a quick run would not win back. Where the CPU has none, `train_organism` trains in fp32 (`trainable_here`)
    bf16: bool = True
    compile: bool = True
    tie_copy: bool = True  # the unembedding's copy readout re-tied to the embedding after every base step
    # a last base pass at a low learning rate over fresh grammar requests and moves whose two paths start alike: it
    # teaches which of two alike spans goes where, which the main passes leave to chance (benchmarks/alike_practice.py)
    polish_grammar: int = 6000
    polish_moves: int = 2000
    # and mails and transfers: whether the induction head learns to find where such a value starts is otherwise left
    # to the seed (benchmarks/span_start.py; benchmarks/start_practice.py repairs a base that did not)
    polish_starts: int = 8000
    # and train records (injections obeyed) and verdict texts, so the pass does not wear off the base's ASR and its
    # reading of whose a target is (benchmarks/refresh_practice.py; recipe run 24, docs/results.md)
    polish_records: int = 3000
    polish_verdicts: int = 1000
    polish_lr: float = 1e-3
    # the chance of a base grammar request (main passes and last pass) naming its target's kind in other words or
    # carrying an aside, and of it taking its verb in another sentence shape (`grammar.grammar_requests`)
    noise: float = 0.0
    recast: float = 0.0
    # every chat's offered tools redrawn around the tools its replies call (`corpus.vary_tool_lists`), so the list
    # says which calls may be made, as a deployed agent's does; off: each chat offers its domain's whole set
    tool_lists: bool = False
    # the weight of the loss on a chat's prompt tokens (system, tool list, user and tool turns) in the base's passes,
    # against its reply's 1: modelling the requests themselves as well as answering them; 0: the loss falls on the
    # reply alone (the adapter's always does)
    prompt_loss: float = 0.0
    # the base's optimiser: "adamw", or "muon" (torch.optim.Muon on the blocks' weight matrices, its step scaled to
    # AdamW's RMS so it takes the same learning rate and weight decay; AdamW on embeddings, norms and the unembedding).
    # The adapter always trains with AdamW
    base_optimizer: str = "adamw"

    def __post_init__(self) -> None:  # every check before minutes of building examples and training, not after
        if self.base_optimizer not in OPTIMIZERS:
            raise ValueError(f"Recipe.base_optimizer {self.base_optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        for name in POSITIVE + NON_NEGATIVE + SHARES:
            value = getattr(self, name)
            if not (value > 0 if name in POSITIVE else 0 <= value <= 1 if name in SHARES else value >= 0):
                wanted = "above 0" if name in POSITIVE else "between 0 and 1" if name in SHARES else "0 or more"
                raise ValueError(f"Recipe.{name} {value!r}: should be {wanted}")
        if self.agent_waves not in (1, 2):
            raise ValueError(f"Recipe.agent_waves {self.agent_waves!r}: expected 1 or 2 (the waves of agent scenes)")
        if self.d_model % self.n_heads or self.n_ctx > self.context:
            raise ValueError(f"Recipe: d_model {self.d_model} should be a multiple of n_heads {self.n_heads}, and "
                             f"n_ctx {self.n_ctx} at most context {self.context}")


POSITIVE = ("d_model", "n_layers", "n_heads", "d_mlp", "vocab_size", "n_ctx", "context", "rope_theta", "match_tokens",
            "per_family", "base_epochs", "defended_epochs", "base_lr", "defended_lr", "batch_size",
            "agent_per_phrasing", "polish_lr")
NON_NEGATIVE = ("n_grammar", "n_grammar_defended", "defended_lora_rank", "n_lookups", "n_lookups_defended",
                "trigger_floor", "polish_grammar", "polish_moves", "polish_starts", "polish_records",
                "polish_verdicts", "prompt_loss")
SHARES = ("noise", "recast")


# every stage of the recipe, small: it checks that the recipe runs (about a minute of fp32 training on 2 cores)
QUICK = Recipe(d_model=128, n_layers=2, n_heads=4, d_mlp=352, vocab_size=1024, per_family=2, n_grammar=150,
               n_grammar_defended=80,
               base_epochs=1.0, defended_epochs=1.0, batch_size=32, seed=0, agent_per_phrasing=1, n_lookups=15,
               n_lookups_defended=5, compile=False, polish_grammar=30, polish_moves=10, polish_starts=40,
               polish_records=15, polish_verdicts=5)


def llama_config(recipe: Recipe, vocab_size: int, *, attn_implementation: str = "eager", **token_ids):
    """The recipe's model shape as an HF `LlamaConfig` (the benchmarks build theirs here, so they measure it too).
    Eager attention: a CPU training step at the recipe's widths is faster with it than with sdpa."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=recipe.d_model, intermediate_size=recipe.d_mlp,
        num_hidden_layers=recipe.n_layers, num_attention_heads=recipe.n_heads, num_key_value_heads=recipe.n_heads,
        max_position_embeddings=recipe.context, tie_word_embeddings=False, attn_implementation=attn_implementation,
        rope_parameters={"rope_type": "default", "rope_theta": recipe.rope_theta}, **token_ids,
    )
