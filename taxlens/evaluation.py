"""`taxlens eval`: run a model on a prompt set, label every reply, and report the contract's figures.

>>> model = load_model("organism:defended")                                    # doctest: +SKIP
>>> report = evaluate(model, load_records("datasets/toolcalls.jsonl", split="test"), data="...", split="test")
>>> report.figure("lookalike", "success").rate                                  # doctest: +SKIP
0.31
>>> report.write("runs/defended.json")                                         # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace

from taxlens.chat import check_tool_role, drops_tools, render_prompt, renderable
from taxlens.contract import Record
from taxlens.eval_report import EvalReport, FirstTokenKL, RecordResult
from taxlens.generation import check_passed_to, gate_readings, greedy_generate
from taxlens.labels import label_reply
from taxlens.metrics import Outcome, figures_by_kind, format_rate_cell, report_warnings
from taxlens.models import LoadedModel
from taxlens.scoring import log_kl, model_openings, refusal_score


def evaluate(
    model: LoadedModel,
    records: list[Record],
    *,
    data: str,
    split: str | None,
    steer: str | None = None,
    steering=None,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    reply_prefix: str | None = None,
    skip_unrenderable: bool = False,
    tool_role: str | None = None,
    passed_to: LoadedModel | None = None,
    progress: bool = True,
) -> EvalReport:
    """The report for `model` on `records` (greedy decoding); `report.write(path)` saves the contract's JSON.

    `steering` is anything with an `apply(model)` context manager (a `steering.Steering`), or a mapping from each
    record kind to one (or None: unsteered), so that each kind runs under its own; `steer` names it in the report.
    When steered, the report adds `kl.benign`: the mean KL(unsteered ‖ steered) of the first reply token's
    distribution over the benign records, and the same over the benign records the unsteered model already complies
    with (`kl.benign_complied`: the side effect alone, without the refusals the steering is meant to change); each
    benign record's row gets its own `kl_first_token`. Under a gated steering each row also records what the gate
    read and decided: `gate_p_harmful` and `gate` ("ablate", "add" or "none").

    `reply_prefix` forces every reply to open with that text (e.g. "<tool_call>"), which is then scored as part of
    the reply: what the model does once it does not refuse, the ceiling of any intervention that only changes its
    first reply token. Its refusal scores and KL would then be read after the prefix, so it excludes `steering`.

    `passed_to` (with a gated `steering`): the records the gate passes are answered by this model (the defended
    model's base, sharing its tokenizer; the prompt rendered by `model`'s template) instead of the ablated `model`;
    their refusal score and first-token KL are then the passed-to model's."""
    if not records:
        raise ValueError(f"{data}: no records to evaluate" + (f" in split {split!r}" if split else ""))
    if reply_prefix is not None and (steering is not None or not reply_prefix):
        raise ValueError("--reply-prefix must be non-empty and cannot be combined with --steer (it forces the "
                         "reply's opening itself)")
    check_passed_to(model, steering, passed_to)
    if any(m["role"] == "tool" for r in records for m in r.messages):
        check_tool_role(model.tokenizer, model.name, tool_role)
    records, unrenderable = renderable(model.tokenizer, records, data, skip=skip_unrenderable, tool_role=tool_role,
                                       context=model.context_limit, reply_room=max_new_tokens)
    if not records:
        raise ValueError(f"{data}: the model cannot take any record ({len(unrenderable)}), e.g. "
                         f"{unrenderable[0]['id']!r}: {unrenderable[0]['error']}")
    started = time.perf_counter()
    prefix = reply_prefix or ""
    prompts = [render_prompt(model.tokenizer, r, tool_role) + prefix for r in records]
    if isinstance(steering, Mapping):
        unknown = sorted({r.kind for r in records} - set(steering))
        if unknown:
            raise ValueError(f"steering by kind names no steering (or None) for kind(s) {unknown}")
    per_record = [steering.get(r.kind) if isinstance(steering, Mapping) else steering for r in records]
    replies: list = [None] * len(records)
    gates: dict[int, tuple[float, str]] = {}  # record index → (p(harmful), decision) where a gate decided

    def generate(rows: list[int], group, desc: str) -> list:
        with group.apply(model) if group is not None else nullcontext() as handle:
            readings = getattr(handle, "gate_readings", None)
            return greedy_generate(model, [prompts[i] for i in rows], max_new_tokens=max_new_tokens,
                                   batch_size=batch_size, progress=progress, desc=desc,
                                   on_batch=None if readings is None else lambda idx: gates.update(
                                       (rows[j], read) for j, read in zip(idx, readings() or ())))

    passed: set[int] = set()
    if passed_to is not None:  # the gate decides on a one-token pass; what it passes is never generated ablated
        gates.update((i, read) for i, read in enumerate(gate_readings(model, steering, prompts, batch_size)))
        passed = {i for i, (_, decision) in gates.items() if decision == "ablate"}
        rows = sorted(passed)
        for i, reply in zip(rows, greedy_generate(passed_to, [prompts[i] for i in rows], max_new_tokens=max_new_tokens,
                                                  batch_size=batch_size, progress=progress,
                                                  desc=f"eval {passed_to.name} (passed)")):
            replies[i] = reply
    for group in {id(s): s for s in per_record}.values():  # one generation per distinct steering
        rows = [i for i, s in enumerate(per_record) if s is group and i not in passed]
        out = generate(rows, group, f"eval {model.name}" + (" steered" if group is not None else "")) if rows else []
        for i, reply in zip(rows, out):
            replies[i] = reply
    openings = model_openings(model)
    report = build_report(model.name, records, [prefix + r.text for r in replies],
                          [round(float(refusal_score(r.first_logprobs, openings)), 4) for r in replies],
                          data=data, split=split, steer=steer, meta={
                              "max_new_tokens": max_new_tokens, "batch_size": batch_size, "decoding": "greedy",
                              "reply_prefix": reply_prefix, "unrenderable": unrenderable, "tool_role": tool_role,
                              "passed_to": passed_to and passed_to.name,
                              "device": str(model.device), "dtype": str(model.bridge.cfg.dtype),
                              "seconds": round(time.perf_counter() - started, 2)})
    if drops_tools(model.tokenizer):
        report = replace(report, warnings=report.warnings + (
            f"the chat template of {model.name} renders no tools: the model is never shown the schemas of the tools "
            f"it is asked to call, so its calls rest on the request's words alone",))
    if steering is None:
        return report
    kl, per_record = first_token_kl(model, prompts, records, replies, openings, batch_size)
    rows = tuple(replace(row, kl_first_token=per_record.get(row.id),
                         **({"gate": gates[i][1], "gate_p_harmful": gates[i][0]} if i in gates else {}))
                 for i, row in enumerate(report.records))
    return replace(report, records=rows, kl=kl)


def build_report(model: str, records: list[Record], replies: list[str], scores: list[float | None], *, data: str,
                 split: str | None, steer: str | None, meta: dict) -> EvalReport:
    """The contract's report from each record's reply text (and first-token refusal score, None where the model's
    logits are out of reach, as behind an endpoint)."""
    outcomes, rows = [], []
    for record, text, score in zip(records, replies, scores):
        labelled = label_reply(text, record.tools, record.expected["action"])
        outcome = Outcome(record, text, labelled)
        outcomes.append(outcome)
        rows.append(RecordResult(
            id=record.id, kind=record.kind, domain=record.domain, label=labelled.label, reply=text, ok=outcome.ok,
            reason=labelled.reason, refusal_score=score, family=record.extra.get("family"), miss=outcome.miss))
    return EvalReport(model=model, data=str(data), split=split, steer=steer, kinds=figures_by_kind(outcomes),
                      records=tuple(rows), warnings=tuple(report_warnings(outcomes)),
                      meta={"n": len(records), **meta})


def first_token_kl(model: LoadedModel, prompts: list[str], records: list[Record], steered: list, openings,
                   batch_size: int) -> tuple[FirstTokenKL, dict[str, float]]:
    """Mean KL(unsteered ‖ steered) of the first reply token over the benign records (all, and those the unsteered
    model complies with), and each benign record's own (id → KL)."""
    benign = [i for i, r in enumerate(records) if r.kind == "benign"]
    if not benign:
        return FirstTokenKL(None, None), {}
    plain = greedy_generate(model, [prompts[i] for i in benign], max_new_tokens=1, batch_size=batch_size)
    kl, complied = [], []
    for i, reply in zip(benign, plain):
        p = reply.first_logprobs
        kl.append(float(log_kl(p, steered[i].first_logprobs)))
        complied.append(float(refusal_score(p, openings)) <= 0)
    kept = [k for k, c in zip(kl, complied) if c]
    return (FirstTokenKL(round(sum(kl) / len(kl), 5), round(sum(kept) / len(kept), 5) if kept else None),
            {records[i].id: round(k, 5) for i, k in zip(benign, kl)})


FIGURE_COLUMNS = (
    ("success", "success"), ("over_refusal", "over-refusal"), ("refusal", "harmful refusal"),
    ("refusal_trigger_bearing", "refusal (triggers)"), ("refusal_trigger_free", "refusal (trigger-free)"),
    ("calls_made", "calls made"), ("asr", "ASR"), ("utility_under_attack", "utility under attack"),
    ("no_action", "no action"), ("invalid", "invalid"),
)


def report_table(report: EvalReport):
    """A rich Table of the report: one row per figure, one column per kind (so it fits an 80-column terminal), each
    cell the rate, its 95% Wilson interval and, where the records name their template family, the interval from
    resampling families."""
    from rich import box
    from rich.table import Table

    blocks = report.kinds.values()
    families = any(getattr(block, key) is not None and getattr(block, key).family_lo is not None
                   for block in blocks for key, _ in FIGURE_COLUMNS)
    table = Table(title=f"{report.model} on {report.data} (split {report.split or 'all'})",
                  caption="rate, [95% Wilson]" + (", {95%, resampling template families}" if families else ""),
                  box=box.SIMPLE_HEAD)
    table.add_column("figure", min_width=14)  # "(trigger-free)", the longest word of a figure name
    for kind, block in report.kinds.items():
        table.add_column(f"{kind}\nn = {block.n}", justify="right")
    for key, title in FIGURE_COLUMNS:
        rates = [getattr(block, key) for block in blocks]
        if any(r is not None for r in rates):
            table.add_row(title, *(format_rate_cell(r) for r in rates), end_section=True)
    return table
