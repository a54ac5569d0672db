"""What each `taxlens` subcommand does, given its parsed arguments; `taxlens.cli` builds the parser. Heavy imports
(torch, transformer-lens, the analysis and steering packages) happen inside the commands that need them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _console():
    """A rich console that never truncates the tables, even when output goes to a pipe or a narrow terminal."""
    import shutil

    from rich.console import Console

    return Console(width=max(160, shutil.get_terminal_size().columns))


def cmd_data_check(args) -> int:
    from taxlens.agent.tasks import is_task_file, load_tasks
    from taxlens.contract import dangling_pairs, load_records

    if is_task_file(args.file):
        from taxlens.agent.verify import verify_tasks

        items = load_tasks(args.file)
        warnings = verify_tasks(items, args.file, progress=True)
        what = "agent tasks"
    else:
        from taxlens.metrics import record_warnings

        items = load_records(args.file)
        what = "records"
        warnings = [w for w in (dangling_pairs(items),) if w] + record_warnings(items)
    console = _console()
    console.print(_counts_table(f"{args.file}: {len(items)} {what}, all valid",
                                [(i.kind, i.domain, i.split or "-") for i in items]))
    for warning in warnings:
        console.print(f"[bold red]warning:[/] {warning}", soft_wrap=True)
    return 0


def _counts_table(title: str, rows: list[tuple[str, str, str]]):
    """Counts of (kind, domain, split) triples: one row per kind, columns by domain, then by split."""
    from collections import Counter

    from rich.table import Table

    from taxlens.contract import DOMAINS, KINDS, SPLITS

    c = Counter(rows)
    table = Table(title=title)
    table.add_column("kind")
    domains = [d for d in DOMAINS if any(dd == d for _k, dd, _s in c)]
    splits = [s for s in (*SPLITS, "-") if any(ss == s for _k, _d, ss in c)]
    for name in domains + splits + ["total"]:
        table.add_column(name, justify="right")
    for kind in KINDS:
        mine = {key: v for key, v in c.items() if key[0] == kind}
        if mine:
            table.add_row(kind, *(str(sum(v for (_k, d, _s), v in mine.items() if d == x)) for x in domains),
                          *(str(sum(v for (_k, _d, s), v in mine.items() if s == x)) for x in splits),
                          str(sum(mine.values())))
    return table


def cmd_data_sample(args) -> int:
    from taxlens.contract import load_records
    from taxlens.subset import sample_records

    subset = sample_records(load_records(args.file), split=args.split, n=args.n, seed=args.seed, pairs=args.pairs)
    path = subset.write(args.out)
    links = (f"{subset.pairs_kept} minimal pairs kept whole" if args.pairs == "whole" else
             f"{subset.pairs_kept} minimal pairs kept whole, {subset.dropped_links} links to undrawn partners dropped")
    print(f"wrote {len(subset.records)} records of split {args.split or 'any'} to {path} ({links})")
    return 0


def cmd_data_leakage(args) -> int:
    from taxlens.agent.tasks import is_task_file, load_tasks
    from taxlens.contract import load_records
    from taxlens.organism.leakage import find_leaks

    items = load_tasks(args.file) if is_task_file(args.file) else load_records(args.file)
    print(f"{args.file}: {len(items)} items against the organism's whole training text (built afresh, its sandbox "
          f"runs included: a minute or two)", file=sys.stderr)
    summary = find_leaks(items).summary(examples=args.examples)
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if summary["fragments"]["records"] or summary["shared_runs"]["records"] else 0


def cmd_data_generate(args) -> int:
    from taxlens.datagen import write_dataset
    from taxlens.datagen.agent_tasks import write_tasks

    samples = write_dataset(args.out, seed=args.seed)
    tasks = write_tasks(args.out)
    print(f"wrote {len(samples)} records to {Path(args.out) / 'toolcalls.jsonl'}, {Path(args.out) / 'tools.json'} "
          f"and the agent tasks to {tasks}")
    return 0


def cmd_eval(args) -> int:
    from taxlens.agent.tasks import is_task_file
    from taxlens.contract import load_records
    from taxlens.evaluation import evaluate
    from taxlens.models import load_model

    if is_task_file(args.data):
        raise ValueError(f"{args.data} is an agent-task file (its records have an 'environment'): run it with "
                         f"`taxlens agent run --tasks {args.data}`; `--data` takes a prompt file")
    records = load_records(args.data, split=args.split)
    if args.limit:
        records = records[: args.limit]
    if args.endpoint:
        return _eval_endpoint(args, records)
    model = load_model(_source(args), device=args.device, dtype=args.dtype)
    steering, steer = None, args.steer
    if args.oracle_gate and not args.steer:
        raise ValueError("--oracle-gate replaces the gate of a gated --steer config; give --steer")
    if args.steer:
        from steering.config import load_config
        from steering.hooks import ORACLE_DECISIONS, oracle_gate

        steering, _ = load_config(args.steer, model=model)
        if args.oracle_gate:
            steering = oracle_gate(steering)
            decisions = ", ".join(f"{kind}: {decision}" for kind, decision in ORACLE_DECISIONS.items())
            steer = f"{args.steer}, gate replaced by each record's kind ({decisions})"
    steering, passed_to = _passing(args, steering)
    report = evaluate(model, records, data=args.data, split=args.split, max_new_tokens=args.max_new_tokens,
                      batch_size=args.batch_size, steering=steering, steer=steer, reply_prefix=args.reply_prefix,
                      skip_unrenderable=args.skip_unrenderable, tool_role=args.tool_role, passed_to=passed_to)
    return _print_eval(report, args.out, gates_read="the gate's decisions", kl=steering is not None,
                       skipped="the model cannot take")


def _print_eval(report, out: str, *, gates_read: str, kl: bool, skipped: str) -> int:
    """Write an eval report and print its table and what else a reader needs: misses, gate decisions, the KL."""
    from taxlens.eval_report import gate_summary, miss_summary
    from taxlens.evaluation import report_table

    path = report.write(out)
    console = _console()
    console.print(report_table(report))
    if misses := miss_summary(report):
        console.print(f"well-formed calls that missed: {misses}")
    if gates := gate_summary(report):
        console.print(f"{gates_read}: {gates}")
    if kl:
        console.print(f"first-token KL on benign records: {report.kl.benign} "
                      f"(on those the unsteered model complies with: {report.kl.benign_complied})")
    for warning in report.warnings:
        console.print(f"[bold red]warning:[/] {warning}")
    if report.meta["unrenderable"]:
        console.print(f"skipped {len(report.meta['unrenderable'])} records {skipped} (listed under "
                      f"meta.unrenderable)")
    console.print(f"report: {path}  ({report.meta['seconds']} s)")
    return 0


def cmd_sweep(args) -> int:
    from steering.config import load_config
    from steering.sweep import sweep_thresholds, write_sweep
    from taxlens.contract import load_records
    from taxlens.models import load_model

    grids = {name: tuple(values) for name, values in (("thresholds", args.thresholds),
                                                       ("add_thresholds", args.add_thresholds)) if values}
    for name, values in grids.items():
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"--{name.replace('_', '-')}: {list(values)} are not all probabilities in [0, 1]")
    records = load_records(args.data, split=args.split)[: args.limit]
    model = load_model(_source(args), device=args.device, dtype=args.dtype)
    steering, _ = load_config(args.steer, model=model)
    sweep = sweep_thresholds(model, steering, records, data=args.data, split=args.split,
                             max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, **grids)
    out = write_sweep(sweep, args.out)
    _console().print((out / "sweep.md").read_text())
    print(f"sweep: {out / 'sweep.json'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    return 0


def _passing(args, steering, load=None):
    """`steering` with `--gate-threshold` as its gate's threshold, and the `--passed-to` model loaded (by `load`,
    default `load_model`; or None)."""
    for flag, value in (("--passed-to", args.passed_to), ("--gate-threshold", args.gate_threshold)):
        if value is not None and getattr(steering, "gate", None) is None:
            raise ValueError(f"{flag} acts on what a gate passes: give a gated steering config with --steer")
    if args.gate_threshold is not None:
        from dataclasses import replace

        steering = replace(steering, gate=steering.gate.at(args.gate_threshold))
    if args.passed_to is None:
        return steering, None
    from taxlens.models import load_model

    return steering, (load or load_model)(args.passed_to, device=args.device, dtype=args.dtype)


def _eval_endpoint(args, records) -> int:
    from taxlens.endpoint import GATE_HEADER, evaluate_endpoint

    check_no_local_flags(args, LOCAL_FLAGS + ("--reply-prefix",), "evaluates")
    report = evaluate_endpoint(args.endpoint, args.model, records, data=args.data, split=args.split,
                               max_new_tokens=args.max_new_tokens, api_key=args.api_key,
                               concurrency=args.concurrency, tool_role=args.tool_role,
                               skip_unrenderable=args.skip_unrenderable)
    return _print_eval(report, args.out, gates_read=f"the gate's decisions (the server's {GATE_HEADER} header)",
                       kl=False, skipped="past the model's context")


def cmd_steer(args) -> int:
    from steering.config import METHODS
    from steering.pipeline import run_steer

    methods = list(METHODS) if args.method == "all" else [args.method]
    table = run_steer(args.base, _source(args), args.data, args.out, methods=methods, device=args.device,
                      dtype=args.dtype, shortlist_size=args.shortlist, batch_size=args.batch_size,
                      max_new_tokens=args.max_new_tokens, quick=args.quick, positions=tuple(args.positions),
                      skip_unrenderable=args.skip_unrenderable, refusal_openings=args.refusal_openings,
                      agent_tasks=args.agent_tasks)
    out = Path(args.out)
    print((out / "pareto.md").read_text())
    for method, chosen in table["chosen"].items():
        print(f"{method}: {chosen['config']}")
    print(f"trade-off plot: {out / 'tradeoff.png'}")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from steering.config import load_config
    from steering.serve import KEEP_ALIVE_S, check_port, create_app, exposure_warning
    from taxlens.models import load_model, load_serving_model

    check_port(args.host, args.port)  # before a model that may take minutes to load
    if warning := exposure_warning(args.host, args.api_key):
        print(f"warning: {warning}", file=sys.stderr)
    load = load_serving_model if args.engine == "transformers" else load_model
    model = load(_source(args), device=args.device, dtype=args.dtype)
    steering = load_config(args.steer, model=model)[0] if args.steer else None
    steering, passed_to = _passing(args, steering, load)
    app = create_app(model, steering=steering, model_id=args.served_model_name, api_key=args.api_key,
                     tool_role=args.tool_role, passed_to=passed_to)
    handed = f" (what its gate passes answered by {passed_to.name})" if passed_to is not None else ""
    named = f" as {args.served_model_name!r}" if args.served_model_name else ""
    print(f"serving {model.name}{named}{' with ' + args.steer if args.steer else ''}{handed} at "
          f"http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)
    return 0


def cmd_export(args) -> int:
    from steering.export import export_orthogonalized

    out = export_orthogonalized(_source(args), args.steer, args.out, dtype=args.dtype)
    print(f"wrote an HF checkpoint with the direction orthogonalised out of its weights: {out}")
    return 0


def cmd_probe(args) -> int:
    from probes.pipeline import run_probe

    summary = run_probe(args.base, _source(args, "defended"), args.data, args.out, split=args.split,
                        fit_split=args.fit_split, fit_data=args.fit_data, device=args.device, dtype=args.dtype,
                        batch_size=args.batch_size,
                        skip_unrenderable=args.skip_unrenderable, refusal_openings=args.refusal_openings)
    out = Path(args.out)
    print((out / "summary.md").read_text())
    print(f"summary: {out / 'summary.json'}; plots: {', '.join(str(out / p) for p in summary['plots'])}")
    return 0


def cmd_report(args) -> int:
    from taxlens.report import write_run_report

    path = write_run_report(args.run)
    print(f"report: {path}")
    return 0


def cmd_organism_train(args) -> int:
    from taxlens.organism.recipe_file import load_recipe
    from taxlens.organism.train import train_organism

    if args.recipe and args.quick:
        raise ValueError("organism train: give --quick or --recipe, not both")
    recipe = load_recipe(args.recipe) if args.recipe else None
    paths = train_organism(args.out, quick=args.quick, seed=args.seed, defended_lora_rank=args.defended_lora,
                           base=args.base, defended_seed=args.defended_seed, device=args.device, recipe=recipe)
    for role, path in paths.items():
        print(f"{role}: {path}")
    print(f"loss log: {Path(args.out) / 'train_log.jsonl'}")
    return 0


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def cmd_organism_check(args) -> int:
    from taxlens.models import load_model
    from taxlens.organism.fit_check import checkpoint_recipe, recipe_fit

    checkpoint_recipe(args.model)  # fail before loading a model that has no recipe to check against
    fit = recipe_fit(load_model(args.model, device=args.device), n=args.n)
    errors = fit["token_errors"]
    print(f"{args.model} ({fit['role']}), {fit['n']} single-turn chats per set, drawn from its recipe")
    print(f"  exact replies: {fit['exact']['trained_on']:.1%} on chats it trained on, "
          f"{fit['exact']['fresh']:.1%} on fresh draws")
    print(f"  teacher-forced token errors: {errors['copied']['error_rate']:.1%} of {errors['copied']['tokens']} "
          f"tokens copied from the user's message, {errors['other']['error_rate']:.1%} of "
          f"{errors['other']['tokens']} others")
    circuit = fit["copying_circuit"]
    print(f"  copying circuit: {circuit['repeat_accuracy']:.1%} of a repeated span's second copy predicted (first "
          f"copy, from word frequencies alone: {circuit['first_copy_accuracy']:.1%}); per layer, "
          f"strongest head's attention to the previous token {_fmt(circuit['prev_token_attention'])}, "
          f"induction attention {_fmt(circuit['induction_attention'])}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(fit, indent=1) + "\n")
    return 0


def cmd_compare(args) -> int:
    from taxlens.agent.report import is_agent_report
    from taxlens.eval_report import EvalReport, check_same_items
    from taxlens.metrics import autonomy_tax, defense_retained, tax_recovered
    from taxlens.recovery import gate_on_tax

    paths = [p for p in (args.base, args.defended, args.steered, args.oracle, args.ceiling) if p]
    agent = [p for p in paths if is_agent_report(p)]
    if agent and len(agent) != len(paths):
        raise ValueError(f"{agent[0]} is an agent report (`taxlens agent run`) and "
                         f"{next(p for p in paths if p not in agent)} is not: compare reports of one kind")
    if agent:
        if args.oracle or args.ceiling:
            raise ValueError("--oracle and --ceiling compare eval reports (from `taxlens eval`), not agent runs")
        from taxlens.agent_commands import compare_agent_runs

        return compare_agent_runs(args)
    if args.plot:
        raise ValueError("--plot draws agent reports (from `taxlens agent run`); eval reports are drawn by "
                         "`taxlens report`")
    reports = {p: EvalReport.read(p) for p in paths}  # each file read once
    check_same_items(reports)
    base, defended = reports[args.base], reports[args.defended]
    out = {"autonomy_tax_points": autonomy_tax(base, defended)}
    steered_report = []
    if args.steered:
        steered = reports[args.steered]
        steered_report = [(args.steered, steered)]
        out["tax_recovered"] = tax_recovered(base, defended, steered)
        out["defense_retained"] = defense_retained(defended, steered)
        if (on_tax := gate_on_tax(base, defended, steered)) is not None:
            out["gate_on_tax"] = on_tax
    if (args.oracle or args.ceiling) and not (args.oracle and args.ceiling and args.steered):
        raise ValueError("--oracle and --ceiling go together, with --steered: the steered config's run with "
                         "--oracle-gate and the defended model's with --reply-prefix '<tool_call>'")
    if args.oracle:
        from taxlens.recovery import recovery_losses

        oracle, ceiling = reports[args.oracle], reports[args.ceiling]
        steered_report += [(args.oracle, oracle), (args.ceiling, ceiling)]
        out["recovery_losses"] = {kind: losses.to_json() for kind, losses in
                                  recovery_losses(base, defended, steered, oracle, ceiling).items()}
    warnings = [f"{path}: {w}" for path, report in ((args.base, base), (args.defended, defended), *steered_report)
                for w in report.warnings]
    if not out["autonomy_tax_points"]:
        warnings.append(f"{args.base} and {args.defended} hold no benign or lookalike records: there is no autonomy "
                        f"tax to measure")
    if warnings:
        out["warnings"] = warnings
    print(json.dumps(out, indent=1))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _source(args, of: str = "model"):
    from taxlens.models import ModelSource

    return ModelSource.of(getattr(args, of), args.adapter, 1.0 if args.adapter_scale is None else args.adapter_scale)


def check_no_local_flags(args, flags: tuple[str, ...], runs: str) -> None:
    """With --endpoint, the flags that act on a model loaded here (`flags`, as written on the command line) are
    named rather than ignored."""
    local = [flag for flag in flags if getattr(args, flag.lstrip("-").replace("-", "_"), None) is not None]
    if local:
        raise ValueError(f"--endpoint {runs} a model served elsewhere; {', '.join(local)} "
                         f"{'acts' if len(local) == 1 else 'act'} on a model loaded here (serve it with `taxlens "
                         f"serve` and its flags instead)")


LOCAL_FLAGS = ("--steer", "--adapter", "--adapter-scale", "--passed-to", "--gate-threshold", "--device", "--dtype")
