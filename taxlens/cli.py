"""The `taxlens` command. Heavy imports (torch, transformer-lens) happen inside the subcommands that need them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _console():
    """A rich console that never truncates the tables, even when output goes to a pipe or a narrow terminal."""
    import shutil

    from rich.console import Console

    return Console(width=max(160, shutil.get_terminal_size().columns))


def _data_check(args) -> int:
    from rich.table import Table

    from taxlens.contract import DOMAINS, KINDS, SPLITS, counts, load_records

    records = load_records(args.file)
    c = counts(records)
    table = Table(title=f"{args.file}: {len(records)} records, all valid")
    table.add_column("kind")
    present = {s for (_k, _d, s) in c["kind_domain_split"]}
    splits = [s for s in (*SPLITS, "-") if s in present]
    domains = [d for d in DOMAINS if c["domain"][d]]
    for d in domains:
        table.add_column(d, justify="right")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for kind in KINDS:
        if not c["kind"][kind]:
            continue
        by_domain = [sum(v for (k, dd, _s), v in c["kind_domain_split"].items() if k == kind and dd == d) for d in domains]
        by_split = [sum(v for (k, _d, ss), v in c["kind_domain_split"].items() if k == kind and ss == s) for s in splits]
        table.add_row(kind, *map(str, by_domain), *map(str, by_split), str(c["kind"][kind]))
    _console().print(table)
    return 0


def _data_sample(args) -> int:
    from taxlens.contract import load_records
    from taxlens.subset import sample_records

    subset = sample_records(load_records(args.file), split=args.split, n=args.n, seed=args.seed, pairs=args.pairs)
    path = subset.write(args.out)
    links = (f"{subset.pairs_kept} minimal pairs kept whole" if args.pairs == "whole" else
             f"{subset.pairs_kept} minimal pairs kept whole, {subset.dropped_links} links to undrawn partners dropped")
    print(f"wrote {len(subset.records)} records of split {args.split or 'any'} to {path} ({links})")
    return 0


def _data_leakage(args) -> int:
    from taxlens.contract import load_records
    from taxlens.organism.leakage import find_leaks

    summary = find_leaks(load_records(args.file)).summary(examples=args.examples)
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if summary["fragments"]["records"] or summary["shared_runs"]["records"] else 0


def _data_generate(args) -> int:
    from taxlens.datagen import write_dataset

    samples = write_dataset(args.out, seed=args.seed)
    print(f"wrote {len(samples)} records to {Path(args.out) / 'toolcalls.jsonl'} and {Path(args.out) / 'tools.json'}")
    return 0


def _eval(args) -> int:
    from taxlens.contract import load_records
    from taxlens.evaluate import evaluate, report_table, write_report
    from taxlens.models import load_model

    records = load_records(args.data, split=args.split)
    if args.limit:
        records = records[: args.limit]
    if args.endpoint:
        return _eval_endpoint(args, records)
    model = load_model(_source(args), device=args.device, dtype=args.dtype)
    steering = None
    if args.steer:
        from steering.config import load_config

        steering, _ = load_config(args.steer, model=model)
    report = evaluate(model, records, data=args.data, split=args.split, max_new_tokens=args.max_new_tokens,
                      batch_size=args.batch_size, steering=steering, steer=args.steer, reply_prefix=args.reply_prefix,
                      skip_unrenderable=args.skip_unrenderable, tool_role=args.tool_role)
    path = write_report(report, args.out)
    console = _console()
    console.print(report_table(report))
    if steering is not None:
        console.print(f"first-token KL on benign records: {report['kl_first_token_benign']} "
                      f"(on those the unsteered model complies with: {report['kl_first_token_benign_complied']})")
    for warning in report["warnings"]:
        console.print(f"[bold red]warning:[/] {warning}")
    if report["meta"]["unrenderable"]:
        console.print(f"skipped {len(report['meta']['unrenderable'])} records the chat template raised on "
                      f"(listed under meta.unrenderable)")
    console.print(f"report: {path}  ({report['meta']['seconds']} s)")
    return 0


def _eval_endpoint(args, records) -> int:
    from taxlens.endpoint import evaluate_endpoint
    from taxlens.evaluate import report_table, write_report

    local = [flag for flag, value in (("--steer", args.steer), ("--adapter", args.adapter),
                                      ("--reply-prefix", args.reply_prefix), ("--device", args.device)) if value]
    if local:
        raise ValueError(f"--endpoint evaluates a model served elsewhere; {', '.join(local)} act on a model loaded "
                         f"here (serve it with `taxlens serve --steer` instead)")
    report = evaluate_endpoint(args.endpoint, args.model, records, data=args.data, split=args.split,
                               max_new_tokens=args.max_new_tokens, api_key=args.api_key,
                               concurrency=args.concurrency, tool_role=args.tool_role)
    path = write_report(report, args.out)
    console = _console()
    console.print(report_table(report))
    for warning in report["warnings"]:
        console.print(f"[bold red]warning:[/] {warning}")
    console.print(f"report: {path}  ({report['meta']['seconds']} s)")
    return 0


def _steer(args) -> int:
    from steering.config import METHODS
    from steering.pipeline import run_steer

    methods = list(METHODS) if args.method == "all" else [args.method]
    table = run_steer(args.base, _source(args), args.data, args.out, methods=methods, device=args.device,
                      dtype=args.dtype, shortlist_size=args.shortlist, batch_size=args.batch_size,
                      max_new_tokens=args.max_new_tokens, quick=args.quick, positions=tuple(args.positions),
                      skip_unrenderable=args.skip_unrenderable, refusal_openings=args.refusal_openings)
    out = Path(args.out)
    print((out / "pareto.md").read_text())
    for method, chosen in table["chosen"].items():
        print(f"{method}: {chosen['config']}")
    print(f"trade-off plot: {out / 'tradeoff.png'}")
    return 0


def _serve(args) -> int:
    import uvicorn

    from steering.config import load_config
    from steering.serve import KEEP_ALIVE_S, create_app
    from taxlens.models import load_model, load_serving_model

    load = load_serving_model if args.engine == "transformers" else load_model
    model = load(_source(args), device=args.device, dtype=args.dtype)
    steering = load_config(args.steer, model=model)[0] if args.steer else None
    app = create_app(model, steering=steering, api_key=args.api_key, tool_role=args.tool_role)
    print(f"serving {model.name}{' with ' + args.steer if args.steer else ''} at http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)
    return 0


def _export(args) -> int:
    from steering.export import export_orthogonalized

    out = export_orthogonalized(_source(args), args.steer, args.out, dtype=args.dtype)
    print(f"wrote an HF checkpoint with the direction orthogonalised out of its weights: {out}")
    return 0


def _probe(args) -> int:
    from probes.pipeline import run_probe

    summary = run_probe(args.base, _source(args, "defended"), args.data, args.out, split=args.split, fit_split=args.fit_split,
                        fit_data=args.fit_data, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                        skip_unrenderable=args.skip_unrenderable, refusal_openings=args.refusal_openings)
    out = Path(args.out)
    print((out / "summary.md").read_text())
    print(f"summary: {out / 'summary.json'}; plots: {', '.join(str(out / p) for p in summary['plots'])}")
    return 0


def _report(args) -> int:
    from taxlens.report import write_run_report

    path = write_run_report(args.run)
    print(f"report: {path}")
    return 0


def _organism_train(args) -> int:
    from taxlens.organism.train import train_organism

    paths = train_organism(args.out, quick=args.quick, seed=args.seed, defended_lora_rank=args.defended_lora)
    for role, path in paths.items():
        print(f"{role}: {path}")
    print(f"loss log: {Path(args.out) / 'train_log.jsonl'}")
    return 0


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _organism_check(args) -> int:
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
    print(f"  copying circuit: {circuit['repeat_accuracy']:.1%} of a repeated span's second copy predicted; per layer, "
          f"strongest head's attention to the previous token {_fmt(circuit['prev_token_attention'])}, "
          f"induction attention {_fmt(circuit['induction_attention'])}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(fit, indent=1) + "\n")
    return 0


def _compare(args) -> int:
    from taxlens.metrics import autonomy_tax, defense_retained, tax_recovered

    base, defended = (json.loads(Path(p).read_text()) for p in (args.base, args.defended))
    out = {"autonomy_tax_points": autonomy_tax(base, defended)}
    steered_report = []
    if args.steered:
        steered = json.loads(Path(args.steered).read_text())
        steered_report = [(args.steered, steered)]
        out["tax_recovered"] = tax_recovered(base, defended, steered)
        out["defense_retained"] = defense_retained(defended, steered)
    warnings = [f"{path}: {w}" for path, report in ((args.base, base), (args.defended, defended), *steered_report)
                for w in report.get("warnings", [])]
    if warnings:
        out["warnings"] = warnings
    print(json.dumps(out, indent=1))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _adapter_arguments(parser: argparse.ArgumentParser, of: str = "--model") -> None:
    parser.add_argument("--adapter", default=None,
                        help=f"a PEFT adapter folder loaded onto {of} and merged (an adapter folder may also be given "
                             f"as {of} itself: its adapter_config.json names the base)")
    parser.add_argument("--adapter-scale", type=float, default=1.0,
                        help="scale of the adapter's update: 0 = the base, 1 = the adapter as trained (default)")


def _source(args, of: str = "model"):
    from taxlens.models import ModelSource

    return ModelSource.of(getattr(args, of), args.adapter, args.adapter_scale)


def _openings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refusal-openings", nargs="+", default=None, metavar="PHRASE",
                        help="phrases this model's refusals open with (e.g. 'I cannot' 'Sorry'); default: read from "
                             "the defended model's own replies on the fitting split")


def _tool_role_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tool-role", default=None, metavar="ROLE",
                        help="render tool results in this role, the one the model's chat template reserves for "
                             "untrusted data (Meta-SecAlign: input); default: tool")


def _render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-unrenderable", action="store_true",
                        help="skip records the model's chat template raises on (counted in the output) instead of "
                             "stopping at the first")


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on the CPU")


def build_parser() -> argparse.ArgumentParser:
    from taxlens.datagen import SEED

    parser = argparse.ArgumentParser(prog="taxlens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="prompt sets: check a file against the contract, or regenerate the shipped one")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate FILE and print its counts by kind, domain and split")
    check.add_argument("file")
    check.set_defaults(func=_data_check)
    sample = data_sub.add_parser("sample", help="write a valid seeded subset of FILE (minimal pairs kept whole, or "
                                                "their links dropped)")
    sample.add_argument("file")
    sample.add_argument("--split", choices=("train", "val", "test"), default=None, help="default: every split")
    sample.add_argument("--n", type=int, required=True, help="at most this many records")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--pairs", choices=("whole", "drop"), default="whole",
                        help="whole: draw minimal pairs as units of two; drop: draw records singly and remove links "
                             "to partners not drawn")
    sample.add_argument("--out", required=True, help="the subset's JSONL path")
    sample.set_defaults(func=_data_sample)
    leak = data_sub.add_parser("leakage", help="val and test records that the organism's training text can produce "
                                               "(4+ fixed words of a template, or 6 words shared); exit 1 if any")
    leak.add_argument("file")
    leak.add_argument("--examples", type=int, default=5, help="most common witnesses to list per check")
    leak.add_argument("--out", default=None, help="also write the summary here (JSON)")
    leak.set_defaults(func=_data_leakage)
    gen = data_sub.add_parser("generate", help="regenerate toolcalls.jsonl and tools.json")
    gen.add_argument("--out", default="datasets")
    gen.add_argument("--seed", type=int, default=SEED)
    gen.set_defaults(func=_data_generate)

    ev = sub.add_parser("eval", help="evaluate a model on a prompt set and write the contract's report")
    ev.add_argument("--model", required=True, help="HF id, local checkpoint folder, or organism:base|organism:defended "
                                                   "(with --endpoint: the model name the server serves)")
    ev.add_argument("--endpoint", default=None, metavar="URL",
                    help="evaluate a model served at this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1)")
    ev.add_argument("--api-key", default=None, help="with --endpoint: sent as Authorization: Bearer KEY")
    ev.add_argument("--concurrency", type=int, default=8, help="with --endpoint: requests in flight")
    ev.add_argument("--data", required=True, help="a JSONL prompt set in the contract's format")
    ev.add_argument("--split", choices=("train", "val", "test"), default=None)
    ev.add_argument("--out", required=True, help="report JSON path")
    ev.add_argument("--max-new-tokens", type=int, default=128)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N selected records")
    _adapter_arguments(ev)
    _render_arguments(ev)
    _tool_role_argument(ev)
    _device_arguments(ev)
    ev.add_argument("--steer", default=None, help="a steering config (steer.json from `taxlens steer`) to apply")
    ev.add_argument("--reply-prefix", default=None,
                    help="force every reply to open with this text, e.g. '<tool_call>': what the model does once "
                         "it does not refuse (the ceiling of any first-token intervention)")
    ev.set_defaults(func=_eval)

    st = sub.add_parser("steer", help="fit a steering method on train, search its settings on val, write steer.json")
    st.add_argument("--base", required=True, help="the undefended model, for reference figures")
    st.add_argument("--model", required=True, help="the defended model to steer")
    st.add_argument("--data", required=True, help="a JSONL prompt set with train and val splits")
    st.add_argument("--method", choices=("global", "false_refusal", "gated", "all"), default="gated")
    st.add_argument("--out", required=True, help="output folder (with --method all, one sub-folder per method)")
    st.add_argument("--shortlist", type=int, default=3,
                    help="screened settings evaluated with generation, per positions value "
                         "(and, gated, per gate layer)")
    st.add_argument("--batch-size", type=int, default=32)
    st.add_argument("--max-new-tokens", type=int, default=128)
    st.add_argument("--positions", nargs="+", choices=("prompt", "last", "all"), default=["prompt", "last"],
                    help="which positions the steering may edit (export needs prompt or all)")
    st.add_argument("--quick", action="store_true",
                    help="a reduced grid chosen on the first reply token alone, no generation on val (the demo)")
    _adapter_arguments(st)
    _render_arguments(st)
    _openings_arguments(st)
    _device_arguments(st)
    st.set_defaults(func=_steer)

    sv = sub.add_parser("serve", help="an OpenAI-compatible chat-completions server, optionally steered")
    sv.add_argument("--model", required=True)
    sv.add_argument("--steer", default=None, help="a steering config applied per request (gated: per request/turn)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--engine", choices=("transformers", "bridge"), default="transformers",
                    help="generate with plain transformers (default; about twice as fast on the organism) or "
                         "inside the TransformerLens bridge")
    sv.add_argument("--api-key", default=None, help="require Authorization: Bearer <key> on /v1/ routes")
    _adapter_arguments(sv)
    _tool_role_argument(sv)
    _device_arguments(sv)
    sv.set_defaults(func=_serve)

    ex = sub.add_parser("export", help="bake a static steering config (global, false_refusal) into HF weights")
    ex.add_argument("--model", required=True)
    ex.add_argument("--steer", required=True, help="steer.json")
    ex.add_argument("--out", required=True, help="folder for the HF checkpoint")
    ex.add_argument("--dtype", default="float32", help="saved dtype (float32 keeps logits equal to the hooks')")
    _adapter_arguments(ex)
    ex.set_defaults(func=_export)

    pr = sub.add_parser("probe", help="locate where a defended model's over-refusal arises, against its base")
    pr.add_argument("--base", required=True, help="the undefended model (HF id, folder or organism:base)")
    pr.add_argument("--defended", required=True, help="its defended twin (same tokenizer and widths)")
    pr.add_argument("--data", required=True, help="a JSONL prompt set in the contract's format")
    pr.add_argument("--out", required=True, help="output folder: summary.json, summary.md, plots, directions, cache")
    pr.add_argument("--split", choices=("train", "val", "test"), default="test", help="split the results are scored on")
    pr.add_argument("--fit-split", choices=("train", "val", "test"), default="train",
                    help="split the directions are fitted on")
    pr.add_argument("--fit-data", default=None,
                    help="fit on this file's --fit-split instead of --data's (e.g. score a held-out set that has no "
                         "train split with directions from datasets/toolcalls.jsonl)")
    pr.add_argument("--batch-size", type=int, default=32)
    _adapter_arguments(pr, of="--defended")
    _render_arguments(pr)
    _openings_arguments(pr)
    _device_arguments(pr)
    pr.set_defaults(func=_probe)

    org = sub.add_parser("organism", help="the shipped model organism")
    org_sub = org.add_subparsers(dest="organism_command", required=True)
    train = org_sub.add_parser("train", help="train the base agent and its defended twin from fixed seeds")
    train.add_argument("--out", required=True, help="folder for base/, defended/ and train_log.jsonl")
    train.add_argument("--quick", action="store_true", help="a reduced pair in about a minute, for tests")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--defended-lora", type=int, default=None, metavar="RANK",
                       help="train the defended twin as a LoRA adapter of this rank on the base (default: the recipe's; "
                            "the shipped pair fine-tunes every weight)")
    train.set_defaults(func=_organism_train)
    check = org_sub.add_parser("check", help="how well a checkpoint fits its own recipe: exact replies on chats it "
                                             "trained on vs fresh ones, token errors on copied arguments")
    check.add_argument("--model", default="organism:base", help="organism:base|organism:defended or a folder "
                                                                "written by `organism train`")
    check.add_argument("--n", type=int, default=256, help="chats per set")
    check.add_argument("--out", default=None, help="also write the figures here (JSON)")
    check.add_argument("--device", default=None)
    check.set_defaults(func=_organism_check)

    rp = sub.add_parser("report", help="one markdown page from a run folder's eval, probe and steer outputs")
    rp.add_argument("run", help="the run folder (base.json, defended.json, steered.json, probe/, steer/)")
    rp.set_defaults(func=_report)

    cmp_ = sub.add_parser("compare", help="autonomy tax (and, with --steered, tax recovered) from eval reports")
    cmp_.add_argument("base")
    cmp_.add_argument("defended")
    cmp_.add_argument("--steered", default=None)
    cmp_.set_defaults(func=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    from taxlens.contract import ContractError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ContractError, FileNotFoundError, ValueError) as e:
        print(f"taxlens: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
