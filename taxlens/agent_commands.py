"""`taxlens agent run` and `taxlens agent sweep`: what each does with its parsed arguments (the parser is
`taxlens.cli`)."""

from __future__ import annotations

import json
import time

from taxlens.commands import LOCAL_FLAGS, _console, _passing, _source, check_no_local_flags


def cmd_agent_run(args) -> int:
    from taxlens.agent import AgentReport, EndpointPolicy, ModelPolicy, load_tasks, run_tasks
    from taxlens.agent.report import miss_summary, report_table, step1_gate_summary, unoffered_summary
    from taxlens.agent.tasks import check_task_file

    check_task_file(args.tasks)
    tasks = load_tasks(args.tasks, split=args.split, kinds=tuple(args.kinds) if args.kinds else None)
    tasks = tasks[: args.limit] if args.limit else tasks
    if not tasks:
        raise ValueError(f"{args.tasks}: no tasks" + (f" in split {args.split!r}" if args.split else ""))
    if args.endpoint:
        check_no_local_flags(args, LOCAL_FLAGS, "runs")
    _verify(tasks, args.tasks)
    steering = passed_to = None
    if args.endpoint:
        policy = EndpointPolicy(args.endpoint, args.model, api_key=args.api_key, max_new_tokens=args.max_new_tokens,
                                concurrency=args.concurrency, tool_role=args.tool_role)
    else:
        from taxlens.models import load_model

        model = load_model(_source(args), device=args.device, dtype=args.dtype)
        if args.steer:
            from steering.config import load_config

            steering, _ = load_config(args.steer, model=model)
        steering, passed_to = _passing(args, steering)
        policy = ModelPolicy(model, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                             tool_role=args.tool_role, steering=steering, passed_to=passed_to)
    started = time.perf_counter()
    try:
        trajectories = run_tasks(policy, tasks, max_steps=args.max_steps, chunk=args.batch_size, progress=True,
                                 desc=f"agent {policy.name}" + (" steered" if steering is not None else ""))
    finally:
        if args.endpoint:
            policy.close()
    report = AgentReport.build(policy.name, args.tasks, args.split, args.steer, trajectories, meta={
        "n": len(tasks), "max_steps": args.max_steps, "max_new_tokens": args.max_new_tokens, "decoding": "greedy",
        "endpoint": args.endpoint, "tool_role": args.tool_role, "passed_to": passed_to and passed_to.name,
        "gate_threshold": steering.gate.threshold if getattr(steering, "gate", None) is not None else None,
        "seconds": round(time.perf_counter() - started, 2)})
    path = report.write(args.out)
    console = _console()
    console.print(report_table(report))
    if misses := miss_summary(report):
        console.print(f"failed tasks by where they first left the reference solution: {misses}")
    if unoffered := unoffered_summary(report):
        console.print(f"calls to a tool the task does not offer: {unoffered}")
    if gates := step1_gate_summary(report):
        console.print(f"the gate's decisions on each task's first prompt: {gates}")
    console.print(f"report: {path}  ({report.meta['seconds']} s)")
    return 0


def cmd_agent_sweep(args) -> int:
    from steering.agent_sweep import markdown, sweep_agent_thresholds, write_agent_sweep
    from steering.config import load_config
    from steering.search import THRESHOLDS
    from taxlens.agent import load_tasks
    from taxlens.agent.tasks import check_task_file
    from taxlens.models import load_model

    check_task_file(args.tasks)
    tasks = load_tasks(args.tasks, split=args.split)
    tasks = tasks[: args.limit] if args.limit else tasks
    if not tasks:
        raise ValueError(f"{args.tasks}: no tasks in split {args.split!r}")
    _verify(tasks, args.tasks)
    model = load_model(_source(args), device=args.device, dtype=args.dtype)
    steering, _ = load_config(args.steer, model=model)
    passed_to = None if args.passed_to is None else load_model(args.passed_to, device=args.device, dtype=args.dtype)
    sweep = sweep_agent_thresholds(model, steering, tasks, passed_to=passed_to,
                                   thresholds=tuple(args.thresholds or THRESHOLDS), name=args.tasks, split=args.split,
                                   max_steps=args.max_steps, max_new_tokens=args.max_new_tokens,
                                   batch_size=args.batch_size, tool_role=args.tool_role)
    out = write_agent_sweep(sweep, args.out, config=args.steer)
    _console().print(markdown(sweep))
    if sweep.chosen is not None:
        passing = f" --passed-to {args.passed_to}" if args.passed_to else ""
        print(f"run agents at it: taxlens agent run --model {args.model} --steer {out}{passing} ...")
    print(f"sweep: {out / 'sweep.json'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    return 0


def _verify(tasks, path) -> None:
    """The selected tasks checked in their sandboxes before a model loads (`taxlens.agent.verify`); warnings shown."""
    from taxlens.agent.verify import verify_tasks

    for warning in verify_tasks(tasks, path, progress=True):
        _console().print(f"[bold red]warning:[/] {warning}", soft_wrap=True)


def compare_agent_runs(args) -> int:
    """`taxlens compare` on agent reports: the tax, tax recovered and defense retained per kind, and the plot."""
    from taxlens.agent.report import AgentReport, agent_comparison, plot_comparison
    from taxlens.eval_report import check_same_items

    paths = {"base": args.base, "defended": args.defended, **({"steered": args.steered} if args.steered else {})}
    reports = {name: AgentReport.read(path) for name, path in paths.items()}
    check_same_items({paths[name]: r for name, r in reports.items()}, "tasks")
    out = agent_comparison(reports["base"], reports["defended"], reports.get("steered"))
    if args.plot:
        out["plot"] = str(plot_comparison({f"{n}: {r.model}" + (" steered" if r.steer else ""): r
                                           for n, r in reports.items()}, args.plot))
    print(json.dumps(out, indent=1))
    return 0
