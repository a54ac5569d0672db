"""Cross-model activation patching: run the defended model on a prompt while one of its activations (at one layer,
every position) is replaced by the base model's activation on the same prompt, and read the refusal score.

Sites: `embed` (the token embeddings), and per block `attn_out`, `mlp_out` (what that block writes) and
`resid_post` (the whole stream after it: everything up to that block then comes from the base). The effect of a
patch is reported two ways: `share`, the part of the base-vs-defended refusal-score gap it closes (1: the patched
defended model scores like the base, 0: no change), and `flipped`, the part of the defended model's refusals that
it turns into compliance (patched score ≤ 0).

TransformerLens's `patching.generic_activation_patch` runs its forwards without an attention mask (so only right
padding is safe) and opens a progress bar per call; this is the same replace-the-activation loop, mask-aware.

>>> result = cross_model_patching(base, defended, lookalike_prompts)          # doctest: +SKIP
>>> result["sites"]["mlp_out"]["share"]                                       # doctest: +SKIP
[0.02, 0.61, 0.08, 0.01]
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from taxlens.generation import encode_batch, length_batches
from taxlens.models import LoadedModel
from taxlens.hooks import act_name
from taxlens.scoring import model_refusal_score

LAYER_SITES = ("resid_post", "attn_out", "mlp_out")


def check_twins(a: LoadedModel, b: LoadedModel) -> None:
    """Patching and transfer need the same architecture widths and the same tokenizer."""
    for what in ("n_layers", "d_model"):
        if getattr(a, what) != getattr(b, what):
            raise ValueError(f"{a.name} and {b.name} differ in {what}: {getattr(a, what)} vs {getattr(b, what)}")
    if a.tokenizer.get_vocab() != b.tokenizer.get_vocab():
        raise ValueError(f"{a.name} and {b.name} use different tokenizers; patching needs the same token positions")


@torch.no_grad()
def _scores_and_acts(model: LoadedModel, batch: dict, hooks: list[str] | None = None, patch: dict | None = None):
    """Refusal score at each row's last token, plus the activations at `hooks`; `patch` maps hook → activation
    to write in place of the model's own."""
    acts = {}

    def read(act, hook, key):
        acts[key] = act.detach().clone()

    def write(act, hook, key):
        return patch[key].to(act.dtype)

    fwd = [(h, lambda a, hook, k=h: read(a, hook, k)) for h in hooks or []]
    fwd += [(h, lambda a, hook, k=h: write(a, hook, k)) for h in patch or {}]
    with model.bridge.hooks(fwd_hooks=fwd):  # the bridge's hook points fire inside the HF model it wraps
        # left padding: -1 is every row's last token, the only one whose logits are needed
        logits = model.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          logits_to_keep=1).logits
    return model_refusal_score(model, logits[:, -1]).cpu(), acts


def cross_model_patching(source: LoadedModel, target: LoadedModel, prompts: list[str], *, batch_size: int = 16,
                         progress: bool = True) -> dict:
    """Patch `source` activations into `target` at every site and layer; per-prompt scores are averaged.

    Returns {"source_score", "target_score", "sites": {site: {"score": [per layer], "share": [per layer],
    "stderr": [per layer]}}} where `share` = (target − patched) / (target − source) on the means.
    """
    if not prompts:
        raise ValueError("no prompts to patch")
    check_twins(source, target)
    n_layers = target.n_layers
    sites = [("embed", None)] + [(s, layer) for s in LAYER_SITES for layer in range(n_layers)]
    hooks = [act_name(s, layer) for s, layer in sites]
    per_prompt: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    source_scores, target_scores = [], []
    bar = tqdm(total=len(prompts) * len(sites), desc="patching", disable=not progress, unit="run")
    # batches of alike length (less padding): every figure below is a mean over prompts, whatever their order
    for rows in length_batches(target.tokenizer, prompts, batch_size):
        batch = encode_batch(target.tokenizer, [prompts[i] for i in rows], target.device)
        src_score, src_acts = _scores_and_acts(source, batch, hooks)
        tgt_score, _ = _scores_and_acts(target, batch)
        source_scores.append(src_score)
        target_scores.append(tgt_score)
        for h in hooks:
            per_prompt[h].append(_scores_and_acts(target, batch, patch={h: src_acts[h].to(target.device)})[0])
            bar.update(len(batch["input_ids"]))
    bar.close()
    refused = torch.cat(target_scores) > 0  # the prompts the target model declines
    source_mean, target_mean = torch.cat(source_scores).mean().item(), torch.cat(target_scores).mean().item()
    gap = target_mean - source_mean
    result = {"source": source.name, "target": target.name, "n_prompts": len(prompts),
              "source_score": round(source_mean, 4), "target_score": round(target_mean, 4),
              "target_refused": int(refused.sum()), "sites": {}}
    for site in ("embed", *LAYER_SITES):
        layers = [None] if site == "embed" else range(n_layers)
        figures = [_figures(torch.cat(per_prompt[act_name(site, layer)]), refused, target_mean, gap)
                   for layer in layers]
        result["sites"][site] = {key: [f[key] for f in figures] for key in ("score", "stderr", "share", "flipped")}
    result["localised"] = localise(result)
    return result


def _figures(scores: torch.Tensor, refused: torch.Tensor, target_mean: float, gap: float) -> dict:
    """One patch's reading from its per-prompt refusal scores: the mean and its standard error, the share of the
    target-vs-source gap it closes, and the share of the target's refusals (`refused`) it turns into compliance."""
    return {"score": round(scores.mean().item(), 4), "stderr": round((scores.std() / len(scores) ** 0.5).item(), 4),
            "share": round((target_mean - scores.mean().item()) / gap, 4) if gap else None,
            "flipped": round((scores[refused] <= 0).float().mean().item(), 4) if refused.any() else None}


HEAD_RUNS = 256  # head patches per batch at most: on a 32 × 32-head model, the 8 blocks whose attention matters most


def head_layers(patching: dict, n_heads: int, budget: int = HEAD_RUNS) -> list[int]:
    """The blocks whose heads to patch one by one: all of them when they fit `budget` runs, otherwise those whose
    whole attention output flips the most refusals (then closes the most of the score gap) in `patching`."""
    attn = patching["sites"]["attn_out"]
    layers = range(len(attn["flipped"]))
    keep = max(1, budget // n_heads)
    ranked = sorted(layers, key=lambda i: (attn["flipped"][i] or 0, attn["share"][i] or 0), reverse=True)
    return sorted(ranked[:keep])


def head_patching(source: LoadedModel, target: LoadedModel, prompts: list[str], layers: list[int], *,
                  batch_size: int = 16, progress: bool = True) -> dict:
    """Patch one attention head at a time: its output `z` (before the output projection, every position) from
    `source` into `target`, the other heads left as `target` computes them; read as `cross_model_patching` reads
    its sites. Patching at a block leaves everything before it unchanged, so the target's own `z` there, read from
    its clean run, is what the other heads hold.

    Returns {"layers", "n_heads", "score", "share", "flipped": [per layer in `layers`][per head], "top": the five
    heads that flip the most refusals}."""
    check_twins(source, target)
    hooks = [act_name("z", layer) for layer in layers]
    n_heads = target.bridge.cfg.n_heads
    scores = {(layer, head): [] for layer in layers for head in range(n_heads)}
    source_scores, target_scores = [], []
    bar = tqdm(total=len(prompts) * len(scores), desc="patching heads", disable=not progress, unit="run")
    for rows in length_batches(target.tokenizer, prompts, batch_size):
        batch = encode_batch(target.tokenizer, [prompts[i] for i in rows], target.device)
        src_score, src_z = _scores_and_acts(source, batch, hooks)
        tgt_score, tgt_z = _scores_and_acts(target, batch, hooks)
        source_scores.append(src_score)
        target_scores.append(tgt_score)
        for layer, hook in zip(layers, hooks):
            for head in range(n_heads):
                z = tgt_z[hook].clone()  # z: [batch, pos, head, d_head]
                z[:, :, head] = src_z[hook][:, :, head].to(z.device, z.dtype)
                scores[layer, head].append(_scores_and_acts(target, batch, patch={hook: z})[0])
                bar.update(len(rows))
    bar.close()
    refused = torch.cat(target_scores) > 0
    source_mean, target_mean = torch.cat(source_scores).mean().item(), torch.cat(target_scores).mean().item()
    gap = target_mean - source_mean
    read = {key: _figures(torch.cat(values), refused, target_mean, gap) for key, values in scores.items()}
    grid = {figure: [[read[l, h][figure] for h in range(n_heads)] for l in layers]
            for figure in ("score", "share", "flipped")}
    ranked = sorted(((grid["flipped"][i][h] or 0, grid["share"][i][h] or 0, l, h)
                     for i, l in enumerate(layers) for h in range(n_heads)), reverse=True)
    return {"layers": list(layers), "n_heads": n_heads, "n_prompts": len(prompts),
            "target_refused": int(refused.sum()), **grid,
            "top": [{"layer": l, "head": h, "flipped": f, "share": s} for f, s, l, h in ranked[:5]]}


def localise(result: dict, mass: float = 0.8) -> dict:
    """The shortest run of consecutive stages (-1: the embeddings, then blocks 0 … L-1) that lets in at least `mass`
    of the behaviour change, read off the `resid_post` curve of `flipped` (the share of the target's refusals that
    the patch turns into compliance): the embeddings let in flipped(embed), block L lets in
    flipped(L) − flipped(L − 1). Behaviour, not the log-probability gap, is the measure: the base's score sits far
    below zero, so most of the score gap is distance the behaviour never needs to travel."""
    curve = result["sites"]["resid_post"]["flipped"]
    if any(s is None for s in curve):
        return {"layers": None, "share": None, "note": "the target model refuses none of these prompts"}
    chain = [result["sites"]["embed"]["flipped"][0], *curve]
    entering = [after - before for after, before in zip(chain, [0.0, *chain[:-1]])]  # stage -1, 0, …, L-1
    total = chain[-1]
    if total <= 0:
        return {"layers": None, "share": None, "note": "no patch turns a refusal into compliance"}
    best = None
    for a in range(len(entering)):
        for b in range(a, len(entering)):
            carried = sum(entering[a:b + 1])
            if carried >= mass * total and (best is None or b - a < best[1] - best[0]):
                best = (a, b, carried)
    a, b, carried = best
    return {"layers": [a - 1, b - 1], "share": round(carried / total, 4),
            "entering": {("embed" if i == 0 else f"block {i - 1}"): round(x, 4) for i, x in enumerate(entering)}}
