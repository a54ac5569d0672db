"""The organism recipe: train the base agent from scratch, then fine-tune its defended twin, from fixed seeds.

>>> paths = train_organism("runs/organism", quick=True)     # doctest: +SKIP
>>> sorted(paths)                                            # doctest: +SKIP
['base', 'defended']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from taxlens.organism.corpus import Example, build_examples, polish_examples, vary_tool_lists
from taxlens.organism.host import host
from taxlens.organism.optim import native_bf16, optimizers
from taxlens.organism.recipe import QUICK, Recipe, llama_config
from taxlens.organism.seed_circuit import seed_induction_circuit, tie_copy_readout
from taxlens.models import pick_device
from taxlens.organism.tokenizer import train_tokenizer
from taxlens.tools import schemas_for


def _render(tokenizer, ex: Example) -> tuple[str, str]:
    if ex.messages is None:
        return "", ex.text
    prompt = tokenizer.apply_chat_template(ex.messages, tools=schemas_for(ex.tools), add_generation_prompt=True,
                                           tokenize=False)
    return prompt, ex.reply


def encode(tokenizer, ex: Example, n_ctx: int) -> tuple[list[int], list[int]]:
    """input ids and labels: the loss falls on the reply and its end-of-turn token (on all of a plain text)."""
    return encode_all(tokenizer, [ex], n_ctx)[0]


def encode_all(tokenizer, examples: list[Example], n_ctx: int) -> list[tuple[list[int], list[int]]]:
    """`encode` of each example, with the prompts and replies tokenized in two batched calls (the fast tokenizer's
    batch path takes half the time of one call per text, and gives the same ids)."""
    rendered = [_render(tokenizer, ex) for ex in examples]
    prompts = tokenizer([p for p, _ in rendered], add_special_tokens=False)["input_ids"]
    targets = tokenizer([t for _, t in rendered], add_special_tokens=False)["input_ids"]
    out = []
    for (prompt, _), p_ids, t_ids in zip(rendered, prompts, targets):
        p_ids = p_ids if prompt else [tokenizer.bos_token_id]
        t_ids = t_ids + [tokenizer.eos_token_id]
        out.append(((p_ids + t_ids)[:n_ctx], ([-100] * len(p_ids) + t_ids)[:n_ctx]))
    return out


def _batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random, pad_id: int):
    """Length-bucketed batches (little padding) in random order: [batch, seq] ids, labels and attention mask.

    Widths are rounded up to a multiple of 16 so the CPU kernels see few distinct shapes (each new shape costs a
    kernel build and cache memory)."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunks = []
    for start in range(0, len(order), batch_size * 50):
        block = sorted(order[start:start + batch_size * 50], key=lambda i: len(encoded[i][0]))
        chunks += [block[i:i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        width = -(-max(len(encoded[i][0]) for i in chunk) // 16) * 16
        ids = torch.full((len(chunk), width), pad_id)
        labels = torch.full((len(chunk), width), -100)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            x, y = encoded[i]
            ids[row, :len(x)], labels[row, :len(y)], mask[row, :len(x)] = torch.tensor(x), torch.tensor(y), 1
        yield ids, labels, mask


def weighted_loss(logits, ids, labels, mask, prompt_weight: float):
    """Next-token cross-entropy with weight 1 on labelled tokens and `prompt_weight` on the other attended ones (a
    chat's prompt), normalised by the weights' sum. logits: [batch, seq, vocab]; ids, labels, mask: [batch, seq]."""
    targets = torch.where(labels != -100, labels, ids)[:, 1:]
    weights = torch.where(labels != -100, 1.0, prompt_weight * mask.float())[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), reduction="none")
    return (ce * weights.flatten()).sum() / weights.sum()


def fit(model, tokenizer, examples: list[Example], *, epochs: float, lr: float, recipe: Recipe, log, desc: str,
        after_step=None, prompt_weight: float = 0.0, optimizer: str = "adamw"):
    """AdamW (or Muon: `optimizers`) with linear warm-up and cosine decay, on the device the model sits on (bf16
    autocast if `recipe.bf16`, on a CPU only if it computes bf16 natively, else fp32 with a notice:
    `trainable_here`); appends a loss row to `log` per step and calls `after_step(model)`, if given, after each
    optimiser step. `prompt_weight` > 0 puts that weight of the loss on prompt tokens too (`weighted_loss`)."""
    encoded = encode_all(tokenizer, examples, recipe.n_ctx)
    steps_per_epoch = math.ceil(len(encoded) / recipe.batch_size)
    total = max(1, int(steps_per_epoch * epochs))
    warmup = min(100, total // 10)
    opts = optimizers(model, lr=lr, optimizer=optimizer)

    def schedule(s: int) -> float:  # linear warm-up, then cosine decay to zero
        if s < warmup:
            return (s + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup)))

    scheds = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in opts]
    rng = random.Random(recipe.seed)
    model.train()
    device = next(model.parameters()).device
    on_cpu = device.type == "cpu"
    compiled = recipe.compile and on_cpu  # the CPU's speed-up (Recipe.compile); on a GPU the recipe's widths run eager
    if prompt_weight:
        # compiled together: with the weighted loss outside the model's graph, a step took 1.7 times as long
        def loss_of(ids, labels, mask):
            return weighted_loss(model(input_ids=ids, attention_mask=mask).logits, ids, labels, mask, prompt_weight)

        forward = torch.compile(loss_of, dynamic=True) if compiled else loss_of
    else:
        net = torch.compile(model, dynamic=True) if compiled else model

        def forward(ids, labels, mask):
            return net(input_ids=ids, attention_mask=mask, labels=labels).loss
    bf16 = trainable_here(recipe, device.type).bf16  # emulated bf16 would take minutes a step; says so when it drops
    step, started = 0, time.perf_counter()
    bar = tqdm(total=total, desc=desc, unit="step")
    with deterministic() if compiled else contextlib.nullcontext():
        while step < total:
            for ids, labels, mask in _batches(encoded, recipe.batch_size, rng, tokenizer.pad_token_id):
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = forward(ids, labels, mask)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                for opt in opts:
                    opt.step()
                if after_step is not None:
                    after_step(model)
                for opt, sched in zip(opts, scheds):
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                step += 1
                log({"phase": desc, "step": step, "loss": round(loss.item(), 5), "lr": scheds[0].get_last_lr()[0],
                     "seconds": round(time.perf_counter() - started, 2)})
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update(1)
                if step >= total:
                    break
    bar.close()
    model.eval()


@contextlib.contextmanager
def deterministic():
    """torch's deterministic algorithms while the body runs, the previous setting restored after. Compiled CPU
    training is not reproducible without them: two runs of one seed on two threads differed by up to 5·10⁻⁴ in a
    weight after the quick recipe's steps (a recipe and seed trained again, with some code changed between, gave a
    base finishing 0% of val's lookalike agent tasks where the first run's finished 25.9%: docs/results.md, runs
    50-51); with them the runs are equal."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def _save(model, tokenizer, out: Path, recipe: Recipe, role: str, device: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        # a PEFT adapter, saved as PEFT saves one; its base is the sibling folder, named relative to it so the pair
        # can be moved together (taxlens.models.adapter_base resolves it)
        model.save_pretrained(out)
        config_path = out / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config_path.write_text(json.dumps({**config, "base_model_name_or_path": "../base"}, indent=2) + "\n")
        (out / "README.md").write_text(adapter_card(recipe, device))  # PEFT's own is a blank template
    else:
        model.to(torch.float16).save_pretrained(out, safe_serialization=True)
        model.to(torch.float32)
    tokenizer.save_pretrained(out)
    # the device and host are part of the result: the same seed trained on another device or host gives another pair
    card = {"role": role, "recipe": asdict(recipe), "device": device, "host": host()}
    (out / "organism.json").write_text(json.dumps(card, indent=1) + "\n")
    return out


def adapter_card(recipe: Recipe, device: str) -> str:
    """The defended adapter's README.md, in place of PEFT's blank template: what it is, what it was trained on,
    how to load it."""
    return f"""---
library_name: peft
tags: [lora, taxlens, model-organism]
---

# taxlens model organism: the defended adapter

A LoRA adapter (rank {recipe.defended_lora_rank}, every projection) on the organism's base, the sibling folder
`../base` (a {recipe.n_layers}-layer Llama, d_model {recipe.d_model}), trained by `taxlens organism train` at seed
{recipe.seed if recipe.defended_seed is None else recipe.defended_seed} on {device}; `organism.json` holds the whole
recipe. Its defence set is narrow and labelled by surface form, as keyword-built defence data is:
trigger-bearing harmful requests are refused, trigger-free ones called, injected instructions ignored for the
user's task, and it holds no benign request that shares an attack's words. So it refuses such benign requests too:
the shortcut "The Autonomy Tax" (arXiv 2603.19423) describes. It is a stand-in for a defended model such as
Meta-SecAlign-8B, which ships as an adapter on Llama-3.1-8B-Instruct the same way; it is no defence to deploy.

taxlens loads it wherever a model is accepted (`organism:defended`, this folder, or `--model BASE --adapter
FOLDER`; `--adapter-scale A` scales its update). With PEFT alone:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM

base = AutoModelForCausalLM.from_pretrained("path/to/base")
defended = PeftModel.from_pretrained(base, "path/to/defended")
```

What it does on held-out prompts, and how it was chosen: `docs/organism.md` and `docs/results.md` in the taxlens
repository.
"""


def pass_seeds(recipe: Recipe) -> list[int]:
    """The seed of each fresh pass over the base's training text (the defended set's seed is `recipe.seed + 1`)."""
    return [recipe.seed + 7919 * k for k in range(math.ceil(recipe.base_epochs))]


def _offered(recipe: Recipe, examples: list[Example], seed: int) -> list[Example]:
    """`examples` with their tool lists redrawn where the recipe says so (seeded apart from the examples, so the
    same examples come in the same order either way)."""
    return vary_tool_lists(examples, random.Random(seed + 7919)) if recipe.tool_lists else examples


def base_passes(recipe: Recipe) -> list[Example]:
    """The base's training examples: one fresh build per started epoch (`pass_seeds`)."""
    return [ex for s in pass_seeds(recipe)
            for ex in _offered(recipe, build_examples(
                "base", per_family=recipe.per_family, n_grammar=recipe.n_grammar, seed=s,
                agent_per_phrasing=recipe.agent_per_phrasing, agent_waves=recipe.agent_waves,
                n_lookups=recipe.n_lookups, noise=recipe.noise, recast=recipe.recast), s)]


def polish_set(recipe: Recipe) -> list[Example]:
    """The base's last pass (seeded apart from every main pass and the defended set)."""
    seed = recipe.seed + 104729
    return _offered(recipe, polish_examples(
        n_grammar=recipe.polish_grammar, n_moves=recipe.polish_moves, seed=seed, n_starts=recipe.polish_starts,
        n_records=recipe.polish_records, n_verdicts=recipe.polish_verdicts, noise=recipe.noise,
        recast=recipe.recast), seed)


def defended_set(recipe: Recipe) -> list[Example]:
    """The defended twin's training examples (one build, seeded one past its seed)."""
    seed = recipe.seed if recipe.defended_seed is None else recipe.defended_seed
    return _offered(recipe, build_examples("defended", per_family=recipe.per_family,
                                           n_grammar=recipe.n_grammar_defended, seed=seed + 1,
                                           agent_per_phrasing=recipe.agent_per_phrasing,
                                           agent_waves=recipe.agent_waves,
                                           n_lookups=recipe.n_lookups_defended,
                                           trigger_floor=recipe.trigger_floor,
                                           cues=recipe.defended_cues), seed + 1)


def _untrained_model(recipe: Recipe, examples: list[Example]):
    """A tokenizer trained on the rendered `examples`, and a fresh model of the recipe's shape (with the seeded
    induction circuit)."""
    from transformers import LlamaForCausalLM

    bootstrap = train_tokenizer(["bootstrap"], vocab_size=300)
    tokenizer = train_tokenizer(["".join(_render(bootstrap, ex)) for ex in examples], vocab_size=recipe.vocab_size)
    config = llama_config(recipe, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    if recipe.seed_circuit:
        seed_induction_circuit(model, max_offset=recipe.n_ctx, match_tokens=recipe.match_tokens)
    return model, tokenizer


def _trained_base(folder: str | Path):
    """The base model (fp32, for training an adapter on) and tokenizer of a base folder `train_organism` wrote."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    card = Path(folder) / "organism.json"
    if not card.is_file() or json.loads(card.read_text()).get("role") != "base":
        raise FileNotFoundError(f"{folder}: not a base folder written by `taxlens organism train` (its "
                                "organism.json should say role 'base')")
    return LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)


def continue_base(base: str | Path, out: str | Path, examples: list[Example], *, lr: float, seed: int,
                  desc: str) -> Path:
    """A base folder `train_organism` wrote, trained one pass further over `examples` at `lr` (uncompiled, fp32, its
    copy readout re-tied after each step as in the recipe) and saved to `out`: how the practice benchmarks continue
    a base to ask whether some text repairs it."""
    model, tokenizer = _trained_base(base)
    recipe = Recipe(compile=False, seed=seed)
    fit(model, tokenizer, examples, epochs=1.0, lr=lr, recipe=recipe, log=lambda row: None, desc=desc,
        after_step=tie_copy_readout)
    return _save(model, tokenizer, Path(out), recipe, "base", "cpu")


def continuation_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every practice benchmark that continues a base shares (`continue_base`): the base folder, where
    to write the continued one, the steps (32 examples each), the learning rate and the seed; each adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("base", help="a base folder `taxlens organism train` wrote")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=77)
    return parser


def trainable_here(recipe: Recipe, device: str = "cpu") -> Recipe:
    """`recipe` as this machine can train it: on a CPU without native bf16 kernels a bf16 step is emulated and takes
    about a minute at the recipe's widths (a 2048² bf16 matmul 59 s against 0.13 s in fp32, on 2 AVX2 cores;
    docs/benchmarks.md), so there the recipe trains in fp32, says so, and its organism.json records it. The result
    then differs from a bf16 run of the same seed."""
    if not recipe.bf16 or torch.device(device).type != "cpu" or native_bf16():
        return recipe
    print("taxlens: this CPU has no native bf16 kernels (AVX512-BF16 or AMX); training in fp32 instead: the result "
          "will differ from a bf16 run of the same seed", file=sys.stderr)
    return replace(recipe, bf16=False)


def train_organism(out_dir: str | Path, *, quick: bool = False, seed: int | None = None,
                   defended_lora_rank: int | None = None, base: str | Path | None = None,
                   defended_seed: int | None = None, device: str = "cpu", recipe: Recipe | None = None,
                   defended: bool = True) -> dict[str, Path]:
    """Train and save `out_dir/base` and `out_dir/defended` (with `defended_lora_rank`, a LoRA adapter on the base,
    as Meta-SecAlign ships on Llama-3.1-8B-Instruct); the loss log goes to `out_dir/train_log.jsonl`. `seed` None:
    the recipe's own (the shipped pair's, or the quick recipe's). `base`: a base folder written by this function;
    only the defended twin is trained, on it, and the base is copied to `out_dir/base` unchanged. `device`: where
    the models train ("cpu", "cuda"); the examples are built on the CPU either way. `recipe`: another recipe to
    train instead of the shipped one (another shape, for `benchmarks/capacity.py`); `defended` False stops after the
    base."""
    if recipe is not None and quick:
        raise ValueError("train_organism: give `quick` or `recipe`, not both")
    recipe = recipe or (QUICK if quick else Recipe())
    device = pick_device(device)
    overrides = ({} if seed is None else {"seed": seed}) | (
        {} if defended_lora_rank is None else {"defended_lora_rank": defended_lora_rank}) | (
        {} if defended_seed is None else {"defended_seed": defended_seed})
    recipe = trainable_here(Recipe(**{**asdict(recipe), **overrides}), device)
    where = device if torch.device(device).type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})"
    seed = recipe.seed
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if base is not None:
        model, tokenizer = _trained_base(base)  # first, so a folder that is not a base fails before any work
    defended_examples = defended_set(recipe)
    if base is None:
        base_examples, polish = base_passes(recipe), polish_set(recipe)
        # the vocabulary is the base's: it reads the defended set drawn at the base's seed, whatever `defended_seed`
        # says, so an adapter retrained on a base (`base=`) is the adapter a full run trains
        own_set = (defended_examples if recipe.defended_seed is None
                   else defended_set(replace(recipe, defended_seed=None)))
        model, tokenizer = _untrained_model(recipe, base_examples + polish + own_set)
    model.to(device)
    with (out_dir / "train_log.jsonl").open("w") as log_file:

        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")

        if base is None:
            tie = tie_copy_readout if recipe.seed_circuit and recipe.tie_copy else None
            fit(model, tokenizer, base_examples, epochs=recipe.base_epochs / math.ceil(recipe.base_epochs),
                lr=recipe.base_lr, recipe=recipe, log=log, desc="base", after_step=tie,
                prompt_weight=recipe.prompt_loss, optimizer=recipe.base_optimizer)
            if polish:
                fit(model, tokenizer, polish, epochs=1.0, lr=recipe.polish_lr, recipe=recipe, log=log, desc="polish",
                    after_step=tie, prompt_weight=recipe.prompt_loss, optimizer=recipe.base_optimizer)
            paths = {"base": _save(model, tokenizer, out_dir / "base", recipe, "base", where)}
        else:
            paths = {"base": out_dir / "base"}
            if paths["base"].resolve() != Path(base).resolve():
                shutil.copytree(base, paths["base"], dirs_exist_ok=True)
        if not defended:
            return paths
        defended_recipe = recipe
        if recipe.defended_seed is not None:
            torch.manual_seed(recipe.defended_seed)
            defended_recipe = replace(recipe, seed=recipe.defended_seed)
        if recipe.defended_lora_rank:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(
                r=recipe.defended_lora_rank, lora_alpha=2 * recipe.defended_lora_rank, lora_dropout=0.0,
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        fit(model, tokenizer, defended_examples, epochs=recipe.defended_epochs, lr=recipe.defended_lr,
            recipe=defended_recipe, log=log, desc="defended")
        paths["defended"] = _save(model, tokenizer, out_dir / "defended", recipe, "defended", where)
    return paths
