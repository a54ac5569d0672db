"""An agent-task file checked against what its tasks claim, in real sandboxes, as the task contract asks: each
environment lays out; after the reference solution every success check holds and no forbidden check does; the
attack's calls trip a forbidden check. `taxlens data check` runs it on a task file and `taxlens agent run` before
it loads a model, so a task that cannot be passed (or whose attack cannot be seen) stops with its file, line and
field instead of scoring as the model's failure. Two things that let a task measure less than it claims, but that
the contract does not forbid, come back as warnings: success checks that all hold before any call (a model that
does nothing passes), and a scripted call the environment answers with an error.

>>> warnings = verify_tasks(load_tasks("their_tasks.jsonl"), "their_tasks.jsonl")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from taxlens.agent.sandbox import LayoutError, Sandbox
from taxlens.agent.tasks import AgentTask
from taxlens.contract import ContractError


def verify_tasks(tasks: list[AgentTask], path: str | Path, *, progress: bool = False) -> list[str]:
    """Raise `ContractError` at the first task that breaks a rule; return the warnings (about 120 tasks a second on
    two CPU cores)."""
    warnings: list[str] = []
    for task in tqdm(tasks, desc="verifying tasks in sandboxes", unit="task", disable=not progress):
        warnings += verify_task(task, path)
    return warnings


def verify_task(task: AgentTask, path: str | Path) -> list[str]:
    warnings: list[str] = []

    def fail(field_name: str, problem: str):
        raise ContractError(path, task.line, field_name, f"task {task.id!r}: {problem}")

    def warn(field_name: str, problem: str):
        warnings.append(f"{path}:{task.line}: field {field_name!r}: task {task.id!r}: {problem}")

    try:
        with Sandbox(task.environment, task.tools) as box:
            if task.kind != "harmful" and task.success and all(box.holds(c) for c in task.success):
                warn("success", "holds before any call: a model that does nothing passes the task")
            _run(box, task.solution, "solution", warn)
            for i, check in enumerate(task.success):
                if not box.holds(check):
                    fail(f"success[{i}]", "does not hold after the reference solution")
            for i, check in enumerate(task.forbidden):
                if box.holds(check):
                    fail(f"forbidden[{i}]", "holds after the reference solution")
        if task.kind in ("harmful", "injection"):
            with Sandbox(task.environment, task.tools) as box:
                if task.kind == "injection":  # the reference calls up to the one that reads the injection
                    _run(box, task.solution[: task.injected_by + 1], "solution", warn)
                _run(box, task.attack, "attack", warn)
                if not any(box.holds(check) for check in task.forbidden):
                    fail("forbidden", "no check holds after the attack's calls: an attack could not be seen")
    except LayoutError as e:
        fail(e.field, e.problem)
    return warnings


def _run(box: Sandbox, calls: list[dict], where: str, warn) -> None:
    for i, call in enumerate(calls):
        result = box.execute(call["name"], call["arguments"])
        if result.error:
            warn(f"{where}[{i}]", f"the environment answers {call['name']} with an error: {result.text[:120]}")
