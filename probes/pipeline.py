"""`taxlens probe`: from a base model, its defended twin and a record file, find where over-refusal arises.

The path: cache both models' residual streams after every block (last prompt token and end of the user turn) →
per-layer probes and directions for harm, refusal and trigger (directions fitted on the train split, everything
scored on the evaluation split) → projections → cross-model patching (per block, then per attention head) and word
attribution on the lookalike records → `summary.json`, plots and `summary.md` in the output folder.

>>> summary = run_probe("organism:base", "organism:defended", "datasets/toolcalls.jsonl", "runs/probe")  # doctest: +SKIP
>>> summary["patching"]["localised"]["layers"]                                                           # doctest: +SKIP
[0, 0]
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from probes.attribution import attribute_records, contrast, flip_rates, precision_at_k, rank_tokens
from probes.cache import cache_activations
from probes.heads import head_reading
from probes.layers import (KIND_PAIRS, CONCEPTS, check_aligned, concept_labels, direction_cosines,
                           directions_by_layer, mean_projection_by_kind, probe_accuracy_by_layer, probe_transfer,
                           scoring_problem)
from probes.patching import check_twins, cross_model_patching, head_layers, head_patching
from probes.report import write_plots, write_summary_markdown
from taxlens.chat import render_prompt, renderable
from taxlens.contract import Record, load_records
from taxlens.hooks import resid_post_hooks
from taxlens.models import ModelSource, load_model
from taxlens.readout import read_openings

POSITIONS = (-1, "user_end")


def probe_records(data: str | Path, split: str, fit_split: str, fit_data: str | Path | None = None) -> list[Record]:
    """The records a probe run caches: `data`'s `split` (scored) and the `fit_split` of `fit_data` (default: `data`)
    that directions and probes are fitted on. With `fit_data`, `data`'s records without a split (a held-out set
    written by others often gives none) are scored as `split`. Checked before any model is loaded."""
    if fit_split == split:
        raise ValueError(f"--fit-split and --split are both {split!r}: the probes would be scored on the records "
                         f"their directions were fitted on; fit on another split"
                         + (" (of --fit-data)" if fit_data is not None else " (or another file's: --fit-data)"))
    records = load_records(data)
    if fit_data is not None:
        records = [r for r in load_records(fit_data) if r.split == fit_split] + [
            r if r.split else replace(r, split=split) for r in records if r.split in (split, None)]
    for s, flag, path in ((split, "--split", data), (fit_split, "--fit-split", fit_data or data)):
        if not any(r.split == s for r in records):
            present = sorted({r.split for r in load_records(path) if r.split})
            hint = "" if present or fit_data else (": give --fit-data FILE to fit on that file's train split and "
                                                   "score all of this one")
            raise ValueError(f"{path}: no records in split {s!r} ({flag}); the file has {present or 'no splits'}"
                             f"{hint}")
    if not any(r.kind == "lookalike" and r.split == split for r in records):
        raise ValueError(f"{data}: no lookalike records in split {split!r} to patch and attribute")
    fit_kinds = {r.kind for r in records if r.split == fit_split}
    for concept, pair in KIND_PAIRS.items():
        if missing := [k for k in pair if k not in fit_kinds]:
            raise ValueError(f"{fit_data or data}: no {' or '.join(missing)} records in split {fit_split!r} "
                             f"(--fit-split) to fit the {concept} direction on ({pair[0]} vs {pair[1]})")
    return records


def run_probe(base: str | ModelSource, defended: str | ModelSource, data: str | Path, out: str | Path, *, split: str = "test",
              fit_split: str = "train", fit_data: str | Path | None = None, device: str | None = None,
              dtype: str | None = None, batch_size: int = 32, skip_unrenderable: bool = False,
              refusal_openings: list[str] | None = None, progress: bool = True) -> dict:
    """`fit_data`: fit on this file's `fit_split` instead of `data`'s (a held-out set with no train split of its own
    is then scored with directions from the shipped set's)."""
    out = Path(out)
    records = probe_records(data, split, fit_split, fit_data)
    models = {"base": load_model(base, device=device, dtype=dtype), "defended": load_model(defended, device=device,
                                                                                            dtype=dtype)}
    check_twins(models["base"], models["defended"])
    records, unrenderable = renderable(models["defended"].tokenizer, records, data, skip=skip_unrenderable,
                                       context=models["defended"].context_limit)
    readout = read_openings(models["defended"], [r for r in records if r.split == fit_split], cache=out / "openings.json",
                            refusal_phrases=refusal_openings, batch_size=batch_size, progress=progress,
                            where=f"{fit_data or data} split {fit_split!r}")
    for m in models.values():
        m.openings = readout.openings
    hooks = resid_post_hooks(models["defended"].n_layers)
    stores = {role: cache_activations(m, records, out / "cache" / role, hooks=hooks, positions=POSITIONS,
                                      batch_size=batch_size, progress=progress) for role, m in models.items()}
    check_aligned(stores["base"], stores["defended"])

    accuracy, auroc, directions, transfer, cosine, unscored = {}, {}, {}, {}, {}, {}
    for concept in CONCEPTS:
        fitting = concept_labels(stores["defended"], concept, fit_split)
        # A concept the evaluation split cannot score (a held-out set without harmful records, a defended model
        # that refuses none of it) is reported as such; the directions, patching and attribution still stand.
        evaluation = concept_labels(stores["defended"], concept, split, both_classes=False)
        if problem := scoring_problem(concept, evaluation[1]):
            evaluation, unscored[concept] = None, f"not scored on split {split!r}: {problem}"
        accuracy[concept], auroc[concept], directions[concept] = {}, {}, {}
        for role, store in stores.items():
            scores = probe_accuracy_by_layer(store, *evaluation) if evaluation else None
            accuracy[concept][role] = scores and [s["accuracy"]["rate"] for s in scores]
            auroc[concept][role] = scores
            directions[concept][role] = directions_by_layer(store, *fitting, concept=concept)
            for layer, d in enumerate(directions[concept][role]):
                d.save(out / "directions" / role / f"{concept}_layer{layer}")
        transfer[concept] = evaluation and {
            "base_to_defended": probe_transfer(stores["base"], stores["defended"], fitting, evaluation),
            "defended_to_base": probe_transfer(stores["defended"], stores["base"], fitting, evaluation),
        }
        cosine[concept] = direction_cosines(directions[concept]["base"], directions[concept]["defended"])
    cosine["refusal_vs_harm_defended"] = direction_cosines(directions["refusal"]["defended"],
                                                          directions["harm"]["defended"])

    projection = {role: mean_projection_by_kind(stores[role], directions["refusal"][role], split)
                  for role in stores}
    lookalike = [r for r in records if r.kind == "lookalike" and r.split == split]
    prompts = [render_prompt(models["defended"].tokenizer, r) for r in lookalike]
    patching = cross_model_patching(models["base"], models["defended"], prompts, batch_size=batch_size,
                                    progress=progress)
    heads = head_patching(models["base"], models["defended"], prompts,
                          head_layers(patching, models["defended"].bridge.cfg.n_heads), batch_size=batch_size,
                          progress=progress)
    top = heads["top"][0]
    # both models' head read against the defended model's refusal direction after that block: one yardstick
    refusal = directions["refusal"]["defended"][top["layer"]].vector
    reading = {role: head_reading(m, lookalike, prompts, top["layer"], top["head"], direction=refusal,
                                  batch_size=batch_size) for role, m in models.items()} if top["flipped"] else None
    by_role = {role: attribute_records(m, lookalike, progress=progress)
               for role, m in models.items()}
    ranked = rank_tokens(contrast(by_role["defended"], by_role["base"]), min_count=5)
    flips = flip_rates(by_role["defended"])
    for entry in ranked:
        entry.update(flips.get(entry["token"], {"refused": 0, "flips": 0}))
    ranked_defended_only = rank_tokens(by_role["defended"], min_count=5)

    best_harm = None if "harm" in unscored else max(range(len(hooks)), key=lambda i: accuracy["harm"]["defended"][i])
    summary = {
        "base": models["base"].name, "defended": models["defended"].name, "data": str(data), "split": split, "fit_split": fit_split,
        "fit_data": str(fit_data or data), "unrenderable": unrenderable,
        "openings": readout.summary(models["defended"].tokenizer),
        "layers": list(range(len(hooks))), "hooks": hooks, "position": -1,
        "probe_accuracy": accuracy,
        "probe_scores": auroc,
        "best_harm_layer_defended": None if best_harm is None else {
            "layer": best_harm, "accuracy": auroc["harm"]["defended"][best_harm]["accuracy"]},
        "unscored": unscored,
        "probe_transfer": transfer,
        "refusal_projection": projection,
        "direction_cosine": cosine,
        "patching": patching,
        "patching_heads": heads,
        "head_reading": reading,
        "attribution_method": "occlusion",
        "trigger_tokens": ranked[:25],
        "trigger_precision_at_10": precision_at_k(ranked, 10),
        "trigger_precision_at_10_defended_only": precision_at_k(ranked_defended_only, 10),
        "n_records": {"evaluation": len(stores["defended"].select(split=split)),
                      "fit": len(stores["defended"].select(split=fit_split)), "lookalike": len(lookalike)},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    summary["plots"] = write_plots(summary, out)
    write_summary_markdown(summary, out / "summary.md")
    return summary
