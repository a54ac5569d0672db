"""`taxlens steer`: fit a steering method on the train split, search its settings on the val split, write the config.

The path: cache the defended model's residual stream (train + val) → fit directions and gate probes on train →
screen every setting on val's first reply token → evaluate the best few for real on val → `steer.json` +
`vectors.safetensors`, the screened table (`pareto.json`, `pareto.md`) and the trade-off plot (`tradeoff.png`).

>>> run_steer("organism:base", "organism:defended", "datasets/toolcalls.jsonl", "runs/steer", methods=["gated"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from probes.cache import cache_activations, collect
from steering.config import METHODS, save_config
from steering.report import plot_tradeoff, write_pareto_markdown
from steering.fit import fit_vectors
from steering.search import (choose, false_refusal_settings, first_token_logprobs, GATE_PASSES,
                             global_settings, SEARCHED_POSITIONS, pareto_front, screen, screen_feasible, screen_gated,
                             screen_metrics, shortlist, trigger_free_kinds, val_figures)
from taxlens.chat import render_messages, render_prompt, renderable
from taxlens.contract import load_records
from taxlens.evaluation import evaluate
from taxlens.hooks import resid_post_hooks, write_hooks
from taxlens.models import ModelSource, load_model
from taxlens.readout import read_openings
from taxlens.tools import schemas_for

# Fractions of the adapter's update evaluated beside the steering methods when the defended model is an adapter:
# scaling the defence down is the simplest trade-off a user has, the baseline a method must beat.
ADAPTER_SCALES = (0.25, 0.5, 0.75)


def run_steer(base: str | ModelSource, model: str | ModelSource, data: str | Path, out: str | Path, *,
              methods: list[str],
              device: str | None = None, dtype: str | None = None, shortlist_size: int = 3, batch_size: int = 32,
              max_new_tokens: int = 128, quick: bool = False, positions: tuple[str, ...] = SEARCHED_POSITIONS,
              skip_unrenderable: bool = False, refusal_openings: list[str] | None = None,
              agent_tasks: str | Path | None = None, progress: bool = True) -> dict:
    """Search `methods` and write their configs. `quick` screens a reduced grid (`screen_gated` says which) and
    picks on the screen alone, with no generation on val: a demo, not a search.
    `positions` limits which `Steering.positions` are searched (`("prompt",)` for a config `export` can bake).
    `agent_tasks`: a task file whose train split's reference runs also fit the gate (`agent_turn_streams`)."""
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown steering method {m!r}; choose from {METHODS} or 'all'")
    out = Path(out)
    records = load_records(data)
    train, val = ([r for r in records if r.split == s] for s in ("train", "val"))
    for name, part in (("train", train), ("val", val)):
        if not part:
            raise ValueError(f"{data}: no records in split {name!r} (steer fits on train and searches on val)")
    # train fits the harm (harmful vs lookalike) and trigger (lookalike vs benign) directions; val's harmful records
    # hold the defence to its margin and its lookalikes are what the search recovers
    for name, part, needed in (("train", train, ("benign", "lookalike", "harmful")), ("val", val, ("lookalike",
                                                                                                  "harmful"))):
        if missing := [k for k in needed if not any(r.kind == k for r in part)]:
            raise ValueError(f"{data}: no {' or '.join(missing)} records in split {name!r}; steer needs "
                             f"{', '.join(needed)} records there")
    defended = load_model(model, device=device, dtype=dtype)
    train, skipped_train = renderable(defended.tokenizer, train, data, skip=skip_unrenderable,
                                      context=defended.context_limit)
    val, skipped_val = renderable(defended.tokenizer, val, data, skip=skip_unrenderable,
                                  context=defended.context_limit, reply_room=max_new_tokens)
    readout = read_openings(defended, train, cache=out / "openings.json", refusal_phrases=refusal_openings,
                            batch_size=batch_size, progress=progress, where=f"{data} split 'train'")
    defended.openings = readout.openings
    hooks = resid_post_hooks(defended.n_layers)
    store = cache_activations(defended, train + val, out / "cache", hooks=hooks + write_hooks(defended.n_layers),
                              positions=(-1,), batch_size=batch_size, progress=progress)
    extra = None if agent_tasks is None else agent_turn_streams(defended, agent_tasks, batch_size)
    fitted = fit_vectors(store, split="train", extra_gate=extra)
    val_rows = store.select(split="val")
    val_resid = [store.load(h, -1, val_rows) for h in hooks]

    prompts, kinds = [render_prompt(defended.tokenizer, r) for r in val], trigger_free_kinds(val)
    openings = readout.openings
    baseline = first_token_logprobs(defended, prompts, batch_size=batch_size)
    defended_screen = screen_metrics(baseline, baseline, kinds, openings)
    base_model = load_model(base, device=device, dtype=dtype)
    base_model.openings = readout.openings
    base_screen = screen_metrics(first_token_logprobs(base_model, prompts, batch_size=batch_size), baseline, kinds,
                                 openings)
    defended_val = base_val = None
    if not quick:
        reports = {}
        for role, m in (("defended", defended), ("base", base_model)):
            reports[role] = evaluate(m, val, data=str(data), split="val", max_new_tokens=max_new_tokens,
                                     batch_size=batch_size, progress=progress)
            reports[role].write(out / "val" / f"{role}.json")
        defended_val, base_val = val_figures(reports["defended"]), val_figures(reports["base"])
    del base_model
    scaled = [] if quick else adapter_scale_rows(defended, val, readout.openings, data=data, device=device, dtype=dtype,
                                                 max_new_tokens=max_new_tokens, batch_size=batch_size,
                                                 progress=progress)

    screened, chosen = {}, {}
    for method in methods:
        if method == "gated":
            settings = screen_gated(defended, prompts, kinds, fitted, val_resid, baseline, openings, batch_size,
                                    progress, quick=quick, positions=positions)
        else:
            candidates = (global_settings if method == "global" else false_refusal_settings)(fitted, positions)
            settings = screen(defended, prompts, kinds, candidates, baseline, openings, batch_size, progress)
        if quick:
            best = shortlist(settings, defended_screen, 1)[0]
            ok = screen_feasible(best.screen, defended_screen)
        else:
            evaluated = {id(s): replace(s, val=val_figures(evaluate(
                defended, val, data=str(data), split="val", steering=s.steering, steer=method,
                max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress))
                | {k: s.screen[k] for k in GATE_PASSES if k in s.screen})
                for s in shortlist(settings, defended_screen, shortlist_size, by=("positions", "gate_layer"))}
            best, ok = choose(list(evaluated.values()), defended_val)
            settings = [evaluated.get(id(s), s) for s in settings]
        folder = out if len(methods) == 1 else out / method
        path = save_config(best.steering, folder, method=method, model=defended.source, settings=best.settings, extra={
            "feasible": ok, "quick": quick, "val": best.val, "screen": best.screen, "defended_val": defended_val,
            "base_val": base_val, "fitted_on": {"data": str(data), "split": "train"} | ({} if extra is None else {
                "agent_tasks": str(agent_tasks), "agent_turns": len(extra[1])}),
            "unrenderable": skipped_train + skipped_val, "openings": readout.summary(defended.tokenizer),
        })
        screened[method], chosen[method] = settings, {"config": str(path), "settings": best.settings,
                                                      "val": best.val, "feasible": ok}

    table = {"defended": {"screen": defended_screen, "val": defended_val},
             "base": {"screen": base_screen, "val": base_val},
             "methods": {m: [{"settings": s.settings, "screen": s.screen, "val": s.val}
                             for s in tabled(ss, chosen[m]["settings"])] for m, ss in screened.items()},
             "screened": {m: len(ss) for m, ss in screened.items()},
             "chosen": chosen, "adapter_scale": scaled}
    (out / "pareto.json").write_text(json.dumps(table, indent=1) + "\n")
    write_pareto_markdown(table, screened, out / "pareto.md")
    plot_tradeoff(table, out / "tradeoff.png")
    return table


def agent_turn_streams(model, tasks: str | Path, batch_size: int = 32) -> tuple[torch.Tensor, np.ndarray]:
    """The model's stream after every block at the last token of every turn of the scripted reference runs of the
    train-split tasks in `tasks`, streams: [turns, n_layers, d_model], and each turn's gate label: 1 for a harmful
    task's turns and an injected task's once the injected tool result is in context, else 0. A gate fitted on single
    prompts alone sees a tool result only in injections, and reads a benign task's turns after its first call as
    half harmful (docs/results.md, runs 43-45)."""
    from taxlens.agent import load_tasks
    from taxlens.agent.loop import reference_turns
    from taxlens.agent.policies import in_role

    train = load_tasks(tasks, split="train")
    if not train:
        raise ValueError(f"{tasks}: no train-split agent tasks to fit the gate on")
    turns, _ = reference_turns(train)
    prompts = [render_messages(model.tokenizer, in_role(t.messages, None), schemas_for(t.task.tools)) for t in turns]
    too_long = [t.task.id for t, p in zip(turns, prompts)
                if len(model.tokenizer(p, add_special_tokens=False)["input_ids"]) > model.context_limit]
    if too_long:
        raise ValueError(f"{tasks}: turns of tasks {sorted(set(too_long))[:5]} exceed {model.name}'s context of "
                         f"{model.context_limit} tokens")
    y = np.array([t.task.kind == "harmful" or (t.task.kind == "injection" and t.task.injected_by is not None
                                               and t.step > t.task.injected_by) for t in turns], dtype=int)
    hooks = resid_post_hooks(model.n_layers)
    streams = torch.cat([collect(model, prompts[i:i + batch_size], [None] * len(prompts[i:i + batch_size]), hooks,
                                 (-1,))[:, :, 0] for i in range(0, len(prompts), batch_size)])
    return streams, y


def tabled(settings: list, chosen: dict) -> list:
    """The screened settings `pareto.json` keeps: the Pareto front, those evaluated for real and the chosen one,
    in screening order (a full gated search screens tens of thousands; `screened` counts them all)."""
    front = {id(s) for s in pareto_front(settings)}
    return [s for s in settings if id(s) in front or s.val is not None or s.settings == chosen]


def adapter_scale_rows(defended, val: list, openings, *, data, device, dtype, max_new_tokens: int, batch_size: int,
                       progress: bool) -> list[dict]:
    """Val figures of the defended adapter scaled down (`ADAPTER_SCALES` of its scale); none when it is no adapter."""
    if defended.source.adapter is None:
        return []
    rows = []
    for fraction in ADAPTER_SCALES:
        source = replace(defended.source, adapter_scale=defended.source.adapter_scale * fraction)
        model = load_model(source, device=device, dtype=dtype)
        model.openings = openings
        report = evaluate(model, val, data=str(data), split="val", max_new_tokens=max_new_tokens,
                          batch_size=batch_size, progress=progress)
        rows.append({"adapter_scale": source.adapter_scale, "val": val_figures(report)})
        del model
    return rows
